"""The hub's HTTP API (FastAPI): routes under ``/api/v1`` and their dependencies."""
