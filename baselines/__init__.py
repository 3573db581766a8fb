"""Reference recommenders every model is compared with, and the fillers of short lists."""
