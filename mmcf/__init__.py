"""MMCF's denoising autoencoder over tracks + artists (SPEC section 2): four schemes, each serving
some challenge categories, trained tied then untied, used through `predict` / `dae_scores`."""
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE, Bag
from mmcf.predict import MMCFModels, dae_scores, encode_inputs, load_models, predict, recommend, route
from mmcf.train import train_all, train_scheme

__all__ = ["MMCFConfig", "SchemeConfig", "DAE", "Bag", "MMCFModels", "dae_scores", "encode_inputs",
           "load_models", "predict", "recommend", "route", "train_all", "train_scheme"]
