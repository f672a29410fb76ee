"""Models: DS-CNN (ds_cnn), the KWS transformer family (transformer), names and checkpoints (zoo)."""
from .zoo import MODEL_NAMES, build_model, load_model, model_from_config, resolve_model, save_model
from .stats import model_stats

__all__ = ["MODEL_NAMES", "build_model", "load_model", "model_from_config", "resolve_model", "save_model", "model_stats"]
