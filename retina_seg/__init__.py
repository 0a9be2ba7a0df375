"""retina-seg: train, sweep and compare from-scratch U-Nets for retinal vessel segmentation.

Every import of the package runs this first: albumentations otherwise asks PyPI for a newer release each time
it is imported (a network call at every start of a command, and a wait on nodes that have no network)."""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
