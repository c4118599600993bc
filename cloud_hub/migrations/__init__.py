"""Alembic migrations of the hub database (``retail-hub migrate`` runs them)."""
