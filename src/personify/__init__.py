"""Personify: a self-hosted personalization engine."""

__version__ = "0.1.0"
