"""MMCF's denoising autoencoder over tracks + artists (SPEC section 2): four schemes, each serving
some challenge categories, trained tied then untied (mmcf/train.py), used through mmcf/predict.py.

The package itself imports nothing: its settings (mmcf/config.py) and dense vocabulary
(mmcf/dense.py) are read by commands that never train, and must not pull in torch."""
