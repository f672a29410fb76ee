"""The one entry point to every dataset: `load_dataset(spec)` -> KwsData (audio: Speech Commands
folders, FSDD, the synthetic keyword sets) or TensorData (npz:, images:)."""
from __future__ import annotations

from ..errors import PqlrError
from . import synth, tensors
from .datasets import load_fsdd, load_speech_commands


def load_dataset(spec: str, *, words: list[str] | None = None, holdout_speaker: str | None = None,
                 seed: int = 0, cache_dir: str | None = None, per_class: int | None = None,
                 progress: bool = True, input_shape=None, task: str | None = None):
    """Load a dataset by spec -> KwsData (audio) or TensorData (npz:, images:).

    speech_commands:PATH | folder:PATH | fsdd:PATH | kws_english[:N] | kws_chinese[:N] | npz:FILE | images:DIR.
    input_shape: (C, H, W) images are resized to (default (3, 32, 32)); for npz the samples' shape must
    equal it; audio ignores it (its shape comes from the front end). task: "classify" | "anomaly"
    (npz only; None = the archive's own `task` array, else classify)."""
    kind, _, arg = str(spec).partition(":")
    if per_class is not None and int(per_class) <= 0:
        raise PqlrError(f"per_class must be positive, got {per_class}")
    if task is not None and task not in tensors.TASKS:
        raise PqlrError(f"task {task!r} unknown (use {', '.join(tensors.TASKS)})")
    if kind in ("npz", "images"):
        if not arg:
            raise PqlrError(f"dataset spec {spec!r} needs a path: {kind}:PATH")
        if words or holdout_speaker:
            raise PqlrError(f"dataset {kind}: words/holdout_speaker apply to audio datasets only")
        if kind == "npz":
            return tensors.load_npz(arg, input_shape=input_shape, task=task, seed=seed, per_class=per_class)
        return tensors.load_images(arg, input_shape=input_shape or tensors.DEFAULT_IMAGE_SHAPE, seed=seed,
                                   per_class=per_class, progress=progress, task=task)
    if task not in (None, "classify"):
        raise PqlrError(f"task {task!r} applies to npz: datasets only; {kind} is a keyword-spotting set")
    if kind in synth.SETS:
        if arg:
            if not arg.isdigit() or int(arg) <= 0:
                raise PqlrError(f"dataset spec {spec!r}: after ':' give clips per class (e.g. {kind}:200)")
            per_class = per_class or int(arg)
        if words or holdout_speaker:
            raise PqlrError(f"dataset {kind}: words/holdout_speaker do not apply (it has a fixed speaker-disjoint split)")
        return synth.load_synth(kind, per_class=per_class, seed=seed, cache_dir=cache_dir, progress=progress)
    if kind in ("speech_commands", "folder", "fsdd") and not arg:
        raise PqlrError(f"dataset spec {spec!r} needs a folder: {kind}:PATH")
    if kind in ("speech_commands", "folder"):
        if holdout_speaker:
            raise PqlrError("holdout_speaker applies to fsdd only")
        return load_speech_commands(arg, words=words, seed=seed, per_class=per_class, progress=progress)
    if kind == "fsdd":
        if words:
            raise PqlrError("words applies to speech_commands only (fsdd has the ten digits)")
        return load_fsdd(arg, holdout_speaker=holdout_speaker, seed=seed, per_class=per_class, progress=progress)
    raise PqlrError(f"unknown dataset spec {spec!r} (use speech_commands:PATH, folder:PATH, fsdd:PATH, "
                    f"{', '.join(k + '[:N]' for k in synth.SETS)}, npz:FILE, images:DIR)")
