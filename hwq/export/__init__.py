"""Plans to the formats other tools run: QONNX (``hwq.export.qonnx``; fixed point: ``qonnx_fixed``),
hls4ml (``hwq.export.hls4ml``), from fixed-point plans (``qfx_plan``) checked against the integer
golden model (``qfx_golden``)."""
