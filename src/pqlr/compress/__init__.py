"""The PQLR techniques, one module each (a frozen config dataclass + decide + do), all reading the
captured graph (pqlr.capture): prune (+ groups: which channels are coupled), quantize (+ program,
qmodules, qmodel: LSQ+ fake quantization; lower: the integer IR), lowrank, distill, mixed (bits per
layer), fold (BatchNorm). The pipeline (pqlr.pipeline) chains them."""
