"""Shelf monitoring: slot occupancy from detector boxes, product identity from a classifier,
occlusion skipping, debounced slot states, stock level and status per shelf.

Modules: ``config`` (settings of a shelf zone), ``geometry`` (normalised boxes, the shelf
outline), ``debounce`` (hold-time state per slot), ``products`` (the ONNX product classifier),
``classes`` (which detector classes are people and products), ``monitor`` (one shelf, frame by
frame). ``edge_agent.analytics.camera`` wires them to rollups, alerts and ``ShelfStatus``
records. Kept free of imports here: ``analytics.config`` imports ``shelf.config``.
"""
