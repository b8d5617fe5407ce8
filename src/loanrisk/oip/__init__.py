"""The Open Inference Protocol v2 (KServe, Triton, MLServer): tensors, REST and gRPC."""
