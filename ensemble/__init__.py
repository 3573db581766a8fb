"""Beyond single models: the two-stage system (candidates from several models, a LightGBM reranker)
and the count-dependent mixing of the autoencoder and the title model."""
