"""The PQLR pipeline: one run of `pqlr-compress` -- capture the model, the five stages (original,
pruned, quantized, low-rank, distilled) with checkpoints, measurement as deployed, the report.

    config.py      PipelineConfig (CLI flags and YAML recipes fill it; recipe.py)
    run.py         run_pipeline: data, capture + dry-run lowering, teacher, stages, report
    stages.py      the stages and their training phases
    measure.py     lowering, bytes, arena, code size, MACs; the final .bin / C package / host check
    checkpoint.py  per-stage checkpoints (graph spec + weights) for --resume
    teacher.py     the distillation teacher (trained once, cached)
    report.py      report.json / report.md
"""
from .config import PipelineConfig
from .run import run_pipeline

__all__ = ["PipelineConfig", "run_pipeline"]
