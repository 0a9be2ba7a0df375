"""Hydra's submitit SLURM launcher, waiting through the requeue of a job whose node failed.

Selected by conf/hydra/launcher/slurm.yaml (``_target_``); the logic lives in retina_seg.sweeps.slurm_watch,
this module only makes it a plugin Hydra accepts.
"""

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class RequeueAwareSlurmLauncher(SlurmLauncher):
    """submitit's SlurmLauncher; a job that SLURM requeues after a node failure is waited for, not failed."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from retina_seg.sweeps.slurm_watch import watching_requeues

        with watching_requeues():
            return super().launch(job_overrides, initial_job_idx)
