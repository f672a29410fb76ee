"""`pqlr eval`: accuracy, loss and confusion matrix of a trained checkpoint on a dataset split (an
anomaly model: ROC AUC and mean reconstruction error)."""
from __future__ import annotations

from ..errors import PqlrError
from .train import (add_data_args, add_tensor_data_args, apply_threads, check_classes, load_checkpoint_model,
                    load_data, tensor_data)

SPLITS = ("test", "val", "train")


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained checkpoint on a dataset",
                       description="Evaluate a checkpoint written by `pqlr train` (OUT/model.safetensors) "
                                   "on a dataset split; prints accuracy and writes metrics as JSON.")
    p.add_argument("--model", required=True, metavar="CKPT", help="a .safetensors checkpoint with its .json beside it")
    add_data_args(p)
    add_tensor_data_args(p)
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", default=None, metavar="FILE", help="write the metrics here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import write_json
    from ..train import evaluate

    if args.batch_size < 1:
        raise PqlrError(f"--batch-size must be >= 1, got {args.batch_size}")
    apply_threads(args)
    model, meta, features = load_checkpoint_model(args.model)
    data = load_data(args, progress=not args.no_progress, meta=meta)
    check_classes(args.model, meta, data)
    split = getattr(data, args.split)
    if len(split) == 0:
        raise PqlrError(f"{args.dataset}: the {args.split} split is empty")
    task = args.task or meta.get("task") or data.task
    res = evaluate(model, split, features, batch_size=args.batch_size, task=task)
    metrics = {"accuracy": res.accuracy, "metric": res.metric, "task": task, "loss": res.loss, "n": res.n,
               "split": args.split,
               "classes": list(data.classes), "confusion": res.confusion, "model": args.model, "dataset": data.name}
    if args.json:
        write_json(args.json, metrics)
    what = "samples" if tensor_data(data) else "clips"
    print(f"{args.model} on {data.name} {args.split} ({res.n} {what}): {res.metric} {res.score:.4f}, loss {res.loss:.4f}")
    return 0
