"""`nas export`: a found network as files that run without nascli — model.py source, weights,
TorchScript, ONNX — checked for parity at export time, with metrics, lineage and SHA-256s."""
