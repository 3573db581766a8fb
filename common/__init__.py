"""Cross-stage pieces: atomic file writes, one-line CLI errors, typed TOML configs, challenge metrics."""
