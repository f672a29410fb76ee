"""The article's flagship, side by side: PQLR's verbatim command (teacher tinybert-6l -> compressed
student, from bench/results/article_command_report.json) versus a single peer technique applied to
the same teacher on the same kws_chinese split: onnxruntime static INT8 (QDQ, per-channel, 200
calibration clips) of the teacher checkpoint that command trained and cached
(pqlr.pipeline.teacher.teacher_cache_path)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from pqlr.pipeline import PipelineConfig
from pqlr.pipeline.teacher import teacher_cache_path
from pqlr.data import load_dataset
from pqlr.models import load_model

import peer_ort
from common import FEATURES, Settings, Split, accuracy
from pqlr.train import DEFAULT_CACHE

REPORT = Path(__file__).resolve().parents[1] / "results" / "article_command_report.json"


def _config(report: dict) -> PipelineConfig:
    c = report["config"]
    return PipelineConfig(model=c["model"], dataset=c["dataset"], teacher=c["teacher"], seed=c["seed"],
                          teacher_epochs=c["teacher_epochs"], batch_size=c["batch_size"], lr=c["lr"],
                          augment=c["augment"], per_class=c["per_class"], progress=False)


def run(s: Settings, work: Path, log=print) -> dict:
    report = json.loads(REPORT.read_text())
    cfg = _config(report)
    data = load_dataset(cfg.dataset, seed=cfg.seed, per_class=cfg.per_class, progress=False)
    path = teacher_cache_path(cfg, data)
    if not path.is_file():
        return {"could_not_run": f"teacher checkpoint {path} not cached: run the article's command first "
                                 f"({report['command']})"}
    teacher, _ = load_model(path)
    teacher.eval()
    x_tr, _ = DEFAULT_CACHE.get(data.train, FEATURES)
    x_te, y_te = DEFAULT_CACHE.get(data.test, FEATURES)
    idx = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(s.seed))[:s.calib]
    split = Split("kws_chinese", cfg.dataset, data, x_te, y_te.numpy(), x_tr[idx].clone())
    log(f"[flagship] teacher {path.name}: ORT int8 PTQ")
    teacher_fp32 = accuracy(teacher, split)
    try:
        ort = peer_ort.run(teacher, split, work / "flagship_ort")
    except Exception as e:
        ort = {"could_not_run": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    final = report["final"]
    return {"command": report["command"], "test_clips": int(len(y_te)),
            "teacher": {"name": cfg.teacher, "accuracy": teacher_fp32, "weight_bytes_fp32": report["teacher"]["weight_bytes"],
                        "params": report["teacher"]["params"], "checkpoint": str(path)},
            "pqlr": {"accuracy": final["accuracy_int"], "weight_bytes": final["weight_bytes"],
                     "bin_bytes": final["bin_bytes"], "ram_peak_bytes": final["ram_peak_bytes"],
                     "seconds": report["seconds"], "source": str(REPORT.relative_to(REPORT.parents[2]))},
            "ort_int8_teacher": ort}
