"""The pure detection core shared by the edge agent and the export tooling.

Preprocessing (``preprocess``), one decoder per family (``decoders``) and NMS (``nms``) define
what a ``ModelManifest`` means; the edge runs them on live frames, ``model_export`` runs the
same code to calibrate and evaluate exported variants. numpy and OpenCV only: the hub never
imports this package.
"""
