"""One prepared check of the GPU path: correctness, then throughput, then quality against time.

    python -m benchmarks.gpu_check --out DIR [--kaggle-root ROOT] [--budget-s 540]
    python -m benchmarks.gpu_check --out DIR --cpu-dry-run        # every stage at toy size on CPU (CI)
    python -m benchmarks.gpu_check --prepare-wheels .whl          # on a networked machine, beforehand

Stages run cheapest first, each under its own time cap, and DIR/gpu_check.json and DIR/gpu_check.md are
rewritten after every stage, so a late failure or a kill still leaves the early results:
1. correctness: the GPU-path tests (tests/gpu) on the device, as pytest runs them;
2. throughput: training images/s per network and speed setting, on synthetic tensors already on the
   device (what the GPU alone can do) and through the real pipeline with 0..N loader workers (how much of
   that the data loader lets through: the fed fraction), plus the pipeline against a plain loop;
3. quality against time: the `kaggle_gpu` recipe and the reference's best run (job 18808) under
   `trainer.max_time`, their test IoU and wall time (needs the Kaggle set: --kaggle-root).
Exit status: 1 when a correctness check fails, 2 for bad arguments or missing packages, else 0.

A GPU node without network access may lack the project's pure-Python dependencies: `--prepare-wheels DIR`
downloads wheels of every dependency that is not torch, lightning or torchmetrics (or one of theirs) at
the versions installed here; on the node, `pip install --no-index --no-deps --target /tmp/site DIR/*.whl`
and `PYTHONPATH=/tmp/site:.` make them importable. The check names what is missing before it starts.

Modules: scales (sizes and settings), wheels (what the node lacks), correctness, throughput and quality (the
three stages), report (the JSON and Markdown record), __main__ (the command line).
"""
