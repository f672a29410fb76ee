"""The PQLR stages, one module each: prune, quantize, lowrank, distill, mixed; pipeline chains them."""
