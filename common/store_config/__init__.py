"""The store configuration's analytics part, shared by the edge (which runs it) and the hub
(which versions, validates and rolls it out): cameras' lines, zones, shelves and alert rules,
the tracker, and the ``StoreLayout`` document the hub rolls out (``layout.py``)."""
