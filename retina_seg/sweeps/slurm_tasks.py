"""How a training run lives inside a SLURM job: one task per device, and one requeue mechanism.

Requeue mechanism (chosen on purpose): submitit's. SLURM sends USR2 ``signal_delay_s`` before the time
limit (``--signal=USR2@...`` in the sbatch script); a preemption can be announced the same way
(``scancel --signal=USR2 JOB``). submitit then calls the Hydra launcher's ``checkpoint()``, which resubmits
the same Hydra job, and requeues it with ``scontrol requeue`` (time limits: up to ``max_num_timeout``
times). The job starts again in the same run folder and ``resume=auto`` continues from
``checkpoints/last.ckpt``. Lightning's own SLURM auto-requeue (USR1, an ``hpc_ckpt_*.ckpt`` of its own)
is switched off, so two handlers never requeue one job and there is only one resume point. A run started
by a plain ``sbatch``/``srun`` without submitit is therefore not requeued on a signal; resubmitted, it
still resumes from last.ckpt.
"""
import os

from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig

from ..config import ConfigError


def under_slurm() -> bool:
    """True inside a SLURM batch/srun task (Lightning's own test; interactive shells do not count)."""
    return SLURMEnvironment.detect()


def check_tasks_match_devices(cfg: DictConfig) -> None:
    """Fail fast when SLURM runs a different number of tasks per node than ``trainer.devices``.

    Lightning would otherwise wait forever for ranks that never start (Lightning #19883).
    """
    tasks = os.environ.get("SLURM_NTASKS_PER_NODE")
    devices = cfg.trainer.devices
    if tasks is None or not isinstance(devices, int):
        return
    if int(tasks) != devices:
        raise ConfigError(
            f"invalid config: trainer.devices={devices} but SLURM runs {tasks} task(s) per node "
            f"(hydra.launcher.tasks_per_node); Lightning needs one task per device. Keep "
            f"hydra.launcher.tasks_per_node=${{trainer.devices}} (conf/hydra/launcher/slurm.yaml)")


def slurm_plugins(cfg: DictConfig) -> list:
    """Trainer plugins for a run under SLURM: its cluster environment without Lightning's auto-requeue."""
    if not under_slurm():
        return []
    check_tasks_match_devices(cfg)
    return [SLURMEnvironment(auto_requeue=False)]
