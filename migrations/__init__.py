"""Alembic environment and versions (SQLite and PostgreSQL). Run via ``portcullis db upgrade``."""
