"""Float training and evaluation of KWS models: `train`, `evaluate`, `predict_logits`, with their
configs and results, the feature cache shared between runs, and DDP under torchrun."""
from .batches import DEFAULT_CACHE, FeatureCache
from .config import EvalResult, TrainConfig, TrainResult
from .evaluate import evaluate, predict_logits
from .loop import train

__all__ = ["TrainConfig", "TrainResult", "EvalResult", "FeatureCache", "DEFAULT_CACHE",
           "train", "evaluate", "predict_logits"]
