"""Integer IR: the lowered quantized model (graph), its ops (ops) and the NumPy oracle (interp)."""
