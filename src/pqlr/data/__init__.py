"""pqlr.data: audio I/O, the KWS front end, augmentation, the keyword-spotting datasets, and tensor
datasets (npz arrays, image folders)."""
from .audio import AudioDataset, fit_clip, read_audio, resample
from .augment import Augment, AugmentConfig
from .datasets import KwsData
from .load import load_dataset
from .features import FeatureConfig, Frontend, dct_matrix, features_numpy, hann_window, mel_filterbank
from .tensors import TensorData, TensorSplit, load_images, load_npz

__all__ = [
    "AudioDataset", "Augment", "AugmentConfig", "FeatureConfig", "Frontend", "KwsData",
    "dct_matrix", "features_numpy", "fit_clip", "hann_window", "load_dataset", "mel_filterbank",
    "read_audio", "resample", "TensorData", "TensorSplit", "load_images", "load_npz",
]
