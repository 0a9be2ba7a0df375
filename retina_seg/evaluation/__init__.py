"""Scoring a saved checkpoint on a split (retina-seg-eval), with the metrics and run-folder format of training."""
