"""How a run was launched and what that asks of it: its job identity, the SLURM job shape and requeue, the sweep's
epoch scale and CPU share."""
