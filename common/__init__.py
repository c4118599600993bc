"""Contracts shared by the edge agent, the hub and the export tooling."""
