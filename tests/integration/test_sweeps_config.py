"""Sweep configuration as Hydra composes it: our launcher configs, the sweep files, the epoch scale."""

import pytest
from omegaconf import OmegaConf

from retina_seg.config import ConfigError
from retina_seg.launch.composition import compose_config
from retina_seg.launch.run_settings import apply_epoch_scale, scaled_epochs
from retina_seg.sweeps.resume import quote_override
from retina_seg.training.run_config import train_config
from tests.helpers.runs import compose
from tests.helpers.sweeps import REFERENCE_RUNS, SWEEPS_DIR


@pytest.mark.parametrize("overrides, tasks", [([], 1), (["trainer=ddp"], 2), (["trainer=ddp", "trainer.devices=4"], 4)])
def test_slurm_launcher_ties_tasks_per_node_to_devices(overrides, tasks):
    launcher = compose_config("train", ["hydra/launcher=slurm", "hydra.sweep.dir=/sweep", *overrides]).hydra.launcher
    assert launcher.tasks_per_node == tasks
    assert launcher._target_.endswith("retina_seg_launcher.requeue_aware_launcher.RequeueAwareSlurmLauncher")
    assert launcher.max_num_timeout > 0  # the plugin's default 0 would never requeue a timed-out run
    assert launcher.submitit_folder == "/sweep/.submitit/%j"
    assert launcher.partition is None and launcher.gpus_per_node is None
    assert launcher.cpus_per_task >= 1 and launcher.mem_gb >= 1 and launcher.timeout_min >= 60
    assert launcher.array_parallelism >= 2


GPU_NODE = ["hydra/launcher=slurm", "trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=4"]


def test_a_multi_gpu_slurm_node_is_set_up_from_the_trainer_alone(monkeypatch):
    """`trainer=ddp trainer.accelerator=gpu trainer.devices=4`: 4 tasks and 4 GPUs per node, synchronised
    batch norm, pinned memory, and every CPU SLURM grants a task but one as loader workers."""
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    cfg = compose_config("train", GPU_NODE)
    assert (cfg.hydra.launcher.tasks_per_node, cfg.hydra.launcher.gpus_per_node) == (4, 4)
    assert cfg.trainer.sync_batchnorm is True
    assert (cfg.data.num_workers, cfg.data.pin_memory) == (7, True)


def test_gpu_settings_stay_off_on_cpu(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    cfg = compose_config("train", ["hydra/launcher=slurm", "trainer=ddp", "trainer.accelerator=cpu"])
    assert cfg.hydra.launcher.gpus_per_node is None and cfg.trainer.sync_batchnorm is False
    assert (cfg.data.num_workers, cfg.data.pin_memory) == (0, False)


@pytest.mark.parametrize("cpus, workers", [(1, 0), (4, 3), (64, 8)])
def test_loader_workers_off_slurm_follow_the_cpus_this_process_may_use(cpus, workers, monkeypatch):
    """Off SLURM a GPU run takes every CPU it may use but one, at most 8 (more only cost memory)."""
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)))
    assert compose(["trainer=gpu"]).data.num_workers == workers
    assert compose(["data.num_workers=3", "trainer=gpu"]).data.num_workers == 3


def test_local_launcher_runs_one_task_per_run():
    """Lightning starts its own DDP processes on one machine, so submitit_local must not start more."""
    launcher = compose_config("train", ["hydra/launcher=local", "trainer=ddp", "hydra.sweep.dir=/sweep"]).hydra.launcher
    assert launcher._target_.endswith("LocalLauncher")
    assert launcher.tasks_per_node == 1 and launcher.cpus_per_task == 1
    assert launcher.submitit_folder == "/sweep/.submitit/%j"


def test_train_uses_the_resumable_sweeper():
    cfg = compose_config("train", [])
    assert cfg.hydra.sweeper._target_.endswith("ResumableSweeper")
    assert cfg.skip_completed is False and cfg.epoch_scale == 1.0


@pytest.mark.parametrize("job", sorted(REFERENCE_RUNS))
def test_reference_table_points_reproduce_the_reference(job):
    cfg = compose_config("train", [f"+reference=job_{job}"], "reference_table", str(SWEEPS_DIR))
    assert (cfg.trainer.max_epochs, cfg.data.batch_size, cfg.optimizer.lr) == REFERENCE_RUNS[job]
    assert cfg.reference_job_id == job
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.model.base_width == 64 and cfg.model.depth == 5  # the reference network (unet_reference)
    assert cfg.data.source._target_.endswith("KaggleSource")


def test_reference_table_sweeps_the_nine_points_as_a_list():
    params = compose_config("train", [], "reference_table", str(SWEEPS_DIR)).hydra.sweeper.params
    assert list(params) == ["+reference"]
    assert params["+reference"].split(",") == [f"job_{job}" for job in REFERENCE_RUNS]


def test_reference_table_shortened_for_cpu_keeps_the_points_hyperparameters():
    overrides = ["+reference=job_18808", "model=unet", "data=synthetic", "epoch_scale=0.01"]
    cfg = compose_config("train", overrides, "reference_table", str(SWEEPS_DIR))
    assert cfg.data.source._target_.endswith("SyntheticSource") and cfg.model.base_width == 16
    assert (cfg.trainer.max_epochs, cfg.data.batch_size, cfg.optimizer.lr) == (1000, 4, 1e-4)
    cfg = train_config(overrides, config_dir=SWEEPS_DIR, config_name="reference_table")
    assert (cfg.trainer.max_epochs, cfg.requested_epochs) == (10, 1000)


def test_lr_batch_grid_is_a_grid():
    params = compose_config("train", [], "lr_batch_grid", str(SWEEPS_DIR)).hydra.sweeper.params
    assert len(params["optimizer.lr"].split(",")) * len(params["data.batch_size"].split(",")) == 6


def test_seeds_is_two_settings_times_three_seeds():
    params = compose_config("train", [], "seeds", str(SWEEPS_DIR)).hydra.sweeper.params
    assert len(params["optimizer.lr"].split(",")) == 2 and params["seed"].split(",") == ["0", "1", "2"]


@pytest.mark.parametrize(
    "epochs, scale, expected",
    [(100, 0.01, 1), (1000, 0.01, 10), (300, 0.01, 3), (100, 0.001, 1), (7, 1.0, 7), (10, 2.5, 25)],
)
def test_scaled_epochs(epochs, scale, expected):
    assert scaled_epochs(epochs, scale) == expected


@pytest.mark.parametrize("scale", [0, -1, "half", True])
def test_bad_epoch_scale_is_rejected_naming_the_key(scale):
    cfg = OmegaConf.create({"epoch_scale": scale, "trainer": {"max_epochs": 10}})
    with pytest.raises(ConfigError, match="epoch_scale="):
        apply_epoch_scale(cfg)


def test_subdir_override_quoting_survives_hydras_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    subdir = "optimizer.lr=0.001,data.batch_size=2 it's"
    parsed = OverridesParser.create().parse_overrides([f"hydra.sweep.subdir={quote_override(subdir)}"])[0]
    assert parsed.value() == subdir
