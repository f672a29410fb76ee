"""Data-movement ops of the IR (slice, pad): NumPy oracle and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_shape.h)."""
from __future__ import annotations

STRUCT_FIELDS: dict[str, tuple[str, ...]] = {}
KERNELS: dict = {}
TABLE: dict = {}
