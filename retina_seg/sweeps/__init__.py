"""Sweeps: resuming a sweep without redoing its completed runs, the locks that keep two jobs out of one folder, and
waiting on SLURM jobs through a requeue."""
