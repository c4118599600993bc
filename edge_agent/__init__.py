"""The store-box runtime: camera sources → detector → tracker → analytics → outbox → sync."""

__version__ = "0.1.0"
