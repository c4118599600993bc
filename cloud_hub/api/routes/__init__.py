"""One module per resource: health, ingest, devices."""
