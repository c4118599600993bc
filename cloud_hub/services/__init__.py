"""Hub business logic over a database connection: ingest, device sync state, dead letters."""
