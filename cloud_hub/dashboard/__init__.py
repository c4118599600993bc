"""The multi-store dashboard: static pages the hub serves at ``/dashboard/``, a client of the
public ``/api/v1`` with the user's API key (see docs/decisions/0007-dashboard.md)."""
