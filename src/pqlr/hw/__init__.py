"""pqlr.hw: targets and what a model costs on them.

emulate     run C models on RV32IMAC / Cortex-M4 (QEMU) or the host, counting retired instructions
toolchains  per-target build flags, cached harness images, section sizes, soft-float scan
profiles    chips as data (targets/*.json), loaded and validated
energy      pJ per operation / memory access (Horowitz 45 nm default)
estimate    latency, energy per inference, average power, budget fit
"""
