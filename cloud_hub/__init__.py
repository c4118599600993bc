"""The HQ hub: ingest, API, alerts, dashboard and fleet rollouts."""
