"""PQLR: Prune, Quantize (LSQ+), Low-rank, distill -- PyTorch models to bit-exact microcontroller C."""
__version__ = "0.1.0"
