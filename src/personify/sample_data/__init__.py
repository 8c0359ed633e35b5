"""Data files bundled with Personify (see README.md in this directory for sources and licences)."""
