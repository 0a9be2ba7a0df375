"""The contracts many packages share, importing none of them: the run folder (run_folder.py) and the checkpoint
payload (checkpoint.py)."""
