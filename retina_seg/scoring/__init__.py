"""How a vessel mask is scored, defined once for training, evaluation, prediction and the benchmarks: the confusion
counts and their conventions (counts.py), pooled histogram metrics at any threshold (pooled.py), per-image scores
(per_image.py), clDice (centrelines.py) and binary annotations scored as each protocol asks (agreement.py).
It imports nothing of the project: the protocols themselves are records (retina_seg.records.protocols)."""
