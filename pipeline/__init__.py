"""The stage runner behind run.py: configuration, stage order, skipping of finished stages."""
