"""Sweeps: resuming a sweep without redoing its completed runs, and the locks that keep two jobs out of one folder."""
