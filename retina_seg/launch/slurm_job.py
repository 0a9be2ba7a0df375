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
    """Fail fast when SLURM's job shape differs from the trainer's: ``trainer.num_nodes`` nodes of
    ``trainer.devices`` tasks each. Lightning would otherwise wait forever for ranks that never start
    (Lightning #19883)."""
    problems = []
    tasks, devices = os.environ.get("SLURM_NTASKS_PER_NODE"), cfg.trainer.devices
    if tasks is not None and isinstance(devices, int) and int(tasks) != devices:
        problems.append(
            f"trainer.devices={devices} but SLURM runs {tasks} task(s) per node (hydra.launcher.tasks_per_node)"
        )
    nodes, num_nodes = os.environ.get("SLURM_JOB_NUM_NODES"), cfg.trainer.get("num_nodes", 1)
    if nodes is not None and int(nodes) != num_nodes:
        problems.append(f"trainer.num_nodes={num_nodes} but the SLURM job has {nodes} node(s) (hydra.launcher.nodes)")
    if problems:
        raise ConfigError(
            f"invalid config: {'; '.join(problems)}; Lightning needs one task per device on every node. Keep "
            f"hydra.launcher.tasks_per_node=${{trainer.devices}} and hydra.launcher.nodes=${{trainer.num_nodes}} "
            f"(conf/hydra/launcher/slurm.yaml)"
        )


def slurm_plugins(cfg: DictConfig) -> list:
    """Trainer plugins for a run under SLURM: its cluster environment without Lightning's auto-requeue."""
    if not under_slurm():
        return []
    check_tasks_match_devices(cfg)
    return [SLURMEnvironment(auto_requeue=False)]
