"""ONNX export of ultralytics YOLO models (``retail-export yolo``)."""
