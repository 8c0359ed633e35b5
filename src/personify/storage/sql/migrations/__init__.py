"""Alembic environment and revisions of the SQL schema (a package so the files ship in wheels)."""
