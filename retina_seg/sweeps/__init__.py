"""Sweeps: settings a run takes from its sweep (epoch scale, CPU share, SLURM tasks) and sweep resumption."""
