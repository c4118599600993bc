"""The device twin at the edge: follow the hub's desired model.

``config`` (the ``twin:`` section), ``client`` (HTTP to the hub, downloads with resume),
``smoke`` (the smoke test), ``reconciler`` (the thread that installs and switches models) and
``session.open_reconciler`` (build one for ``retail-edge run``). Nothing is imported here, so
that the store config can import ``twin.config`` alone.
"""
