"""Prediction on any fundus photograph (FOV detection, tiling, writers) and model export."""
