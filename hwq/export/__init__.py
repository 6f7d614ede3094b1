"""Plans to the formats other tools run: QONNX (``hwq.export.qonnx``)."""
