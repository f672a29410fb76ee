"""`pqlr eval`: accuracy, loss and confusion matrix of a trained checkpoint on a dataset split."""
from __future__ import annotations

from ..errors import PqlrError
from .train import add_data_args, apply_threads, load_data

SPLITS = ("test", "val", "train")


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained checkpoint on a dataset",
                       description="Evaluate a checkpoint written by `pqlr train` (OUT/model.safetensors) "
                                   "on a dataset split; prints accuracy and writes metrics as JSON.")
    p.add_argument("--model", required=True, metavar="CKPT", help="a .safetensors checkpoint with its .json beside it")
    add_data_args(p)
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", default=None, metavar="FILE", help="write the metrics here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def load_checkpoint_model(path: str):
    """-> (model, meta, FeatureConfig) for a zoo checkpoint or a user file.py:Class checkpoint."""
    from ..data import FeatureConfig
    from ..io import load_state
    from ..models import load_model
    from ..models.zoo import load_user_model

    if not path.endswith(".safetensors"):
        raise PqlrError(f"--model {path!r}: give a checkpoint written by `pqlr train` (OUT/model.safetensors)")
    tensors, meta = load_state(path)
    meta = meta or {}
    try:
        features = FeatureConfig(**meta.get("features", {}))
    except TypeError as e:
        raise PqlrError(f"{path}: bad feature config beside it ({e})") from None
    if "user_model" in meta:
        model = load_user_model(meta["user_model"], len(meta.get("classes", [])), features.shape)
        model.load_state_dict(tensors)
    else:
        model = load_model(path)[0]
    return model, meta, features


def run(args) -> int:
    from ..io import write_json
    from ..train import evaluate

    if args.batch_size < 1:
        raise PqlrError(f"--batch-size must be >= 1, got {args.batch_size}")
    apply_threads(args)
    model, meta, features = load_checkpoint_model(args.model)
    data = load_data(args, progress=not args.no_progress)
    classes = meta.get("classes")
    if classes is not None and list(classes) != list(data.classes):
        raise PqlrError(f"{args.model} was trained on classes {classes} but {args.dataset} has {data.classes}"
                        + (f" (trained with --words {','.join(meta['dataset']['words'])})"
                           if (meta.get("dataset") or {}).get("words") else ""))
    split = getattr(data, args.split)
    if len(split) == 0:
        raise PqlrError(f"{args.dataset}: the {args.split} split is empty")
    res = evaluate(model, split, features, batch_size=args.batch_size)
    metrics = {"accuracy": res.accuracy, "loss": res.loss, "n": res.n, "split": args.split,
               "classes": list(data.classes), "confusion": res.confusion, "model": args.model, "dataset": data.name}
    if args.json:
        write_json(args.json, metrics)
    print(f"{args.model} on {data.name} {args.split} ({res.n} clips): accuracy {res.accuracy:.4f}, loss {res.loss:.4f}")
    return 0
