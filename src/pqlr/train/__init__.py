"""Float training and evaluation of models on audio (KWS) or tensor data (npz, images): `train`,
`evaluate`, `predict_logits`, with their configs and results, the feature cache shared between runs,
DDP under torchrun, and the anomaly task (autoencoders: reconstruction loss, `anomaly_scores`, `roc_auc`)."""
from .batches import DEFAULT_CACHE, FeatureCache
from .config import EvalResult, TrainConfig, TrainResult
from .evaluate import anomaly_scores, evaluate, predict_logits, roc_auc
from .loop import reconstruction_loss, train

__all__ = ["TrainConfig", "TrainResult", "EvalResult", "FeatureCache", "DEFAULT_CACHE",
           "train", "evaluate", "predict_logits", "anomaly_scores", "roc_auc", "reconstruction_loss"]
