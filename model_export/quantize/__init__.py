"""FP16 and INT8 variants of an ONNX detector, each evaluated on real frames, in a report."""
