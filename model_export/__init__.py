"""Offline tooling that turns trained models into bundles the edge agent can run."""
