"""Long-running hub processes beside the API (MQTT ingest)."""
