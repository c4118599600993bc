"""The device twin at the edge: follow the hub's desired model and store layout.

``config`` (the ``twin:`` section), ``client`` (HTTP to the hub, downloads with resume),
``smoke`` (the smoke test), ``reconciler`` (the thread that installs and switches models, and
asks ``layout_follower`` to follow the layout first), ``layout`` (merge a rolled-out layout
into the box's file config and validate it here), ``layout_state`` (the applied layout on
disk) and ``session.open_reconciler`` (build one for ``retail-edge run``). Nothing is imported
here, so that the store config can import ``twin.config`` alone.
"""
