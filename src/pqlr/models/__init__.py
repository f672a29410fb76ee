"""Models: DS-CNN (ds_cnn), the KWS transformer family (transformer), names and checkpoints (zoo)."""
from .zoo import (MODEL_NAMES, build_model, load_model, model_config, model_from_config, resolve_model, sample_shape,
                  save_model, user_class, zoo_frames)

__all__ = ["MODEL_NAMES", "build_model", "load_model", "model_config", "model_from_config", "resolve_model",
           "sample_shape", "save_model", "user_class", "zoo_frames"]
