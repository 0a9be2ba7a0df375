"""The private or internal names of other packages that this project imports, subclasses or patches.

They carry no promise of stability, so pyproject.toml bounds those packages at the versions tested; when a bound
is raised, this test says at once which name a new version dropped.
"""

import importlib
import inspect

import pytest

# (package as installed, module, attribute path): the code that relies on each is named beside it.
PRIVATE_NAMES = [
    # retina_seg/sweeps/slurm_watch.py: subclasses the watcher, overrides is_done, swaps SlurmJob's shared watcher.
    ("submitit", "submitit.slurm.slurm", "SlurmInfoWatcher"),
    ("submitit", "submitit.slurm.slurm", "SlurmInfoWatcher.is_done"),
    ("submitit", "submitit.slurm.slurm", "SlurmInfoWatcher.get_state"),
    ("submitit", "submitit.slurm.slurm", "SlurmJob"),
    ("submitit", "submitit.slurm.slurm", "SlurmJob.watcher"),
    # retina_seg/tracking/comet.py: converts hyperparameters as Lightning's own loggers do.
    ("lightning", "lightning.fabric.utilities.logger", "_convert_params"),
    # retina_seg/sweeps/resume.py: launches the basic launcher's jobs in numbered chunks.
    ("hydra-core", "hydra._internal.core_plugins.basic_launcher", "BasicLauncher"),
    ("hydra-core", "hydra._internal.core_plugins.basic_launcher", "BasicLauncher.launch"),
    ("hydra-core", "hydra.core.config_loader", "ConfigLoader.load_sweep_config"),
    # hydra_plugins/retina_seg_sweeper/resumable_sweeper.py: subclasses the basic sweeper, wraps its launcher.
    ("hydra-core", "hydra._internal.core_plugins.basic_sweeper", "BasicSweeper"),
    ("hydra-core", "hydra._internal.core_plugins.basic_sweeper", "BasicSweeper.setup"),
    ("hydra-core", "hydra._internal.core_plugins.basic_sweeper", "BasicSweeper.sweep"),
    # hydra_plugins/retina_seg_launcher/requeue_aware_launcher.py: subclasses the launcher, overrides launch.
    ("hydra-submitit-launcher", "hydra_plugins.hydra_submitit_launcher.submitit_launcher", "SlurmLauncher"),
    ("hydra-submitit-launcher", "hydra_plugins.hydra_submitit_launcher.submitit_launcher", "SlurmLauncher.launch"),
    # retina_seg/launch/composition.py: composes as the command line does (-cd searched before conf/).
    ("hydra-core", "hydra._internal.hydra", "Hydra.create_main_hydra2"),
    ("hydra-core", "hydra._internal.hydra", "Hydra.compose_config"),
    ("hydra-core", "hydra._internal.utils", "create_config_search_path"),
]


def _look_up(package: str, module: str, path: str):
    try:
        found = importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"{package}: module {module} is gone ({error}); see the bound in pyproject.toml")
    for part in path.split("."):
        if not hasattr(found, part):
            pytest.fail(f"{package}: {module}.{path} is gone (no {part!r}); see the bound in pyproject.toml")
        found = getattr(found, part)
    return found


@pytest.mark.parametrize(("package", "module", "path"), PRIVATE_NAMES, ids=[f"{m}.{p}" for _, m, p in PRIVATE_NAMES])
def test_each_private_name_we_rely_on_still_exists(package, module, path):
    assert _look_up(package, module, path) is not None


def test_the_launch_methods_we_override_or_call_take_the_arguments_we_pass():
    for package, module, path in [
        ("hydra-core", "hydra._internal.core_plugins.basic_launcher", "BasicLauncher.launch"),
        ("hydra-submitit-launcher", "hydra_plugins.hydra_submitit_launcher.submitit_launcher", "SlurmLauncher.launch"),
    ]:
        parameters = list(inspect.signature(_look_up(package, module, path)).parameters)
        assert parameters == ["self", "job_overrides", "initial_job_idx"], f"{package}: {module}.{path}{parameters}"


def test_submitit_jobs_share_one_watcher_that_keeps_its_delay():
    """slurm_watch.watching_requeues replaces the class attribute and copies the old watcher's ``_delay_s``."""
    watcher_type = _look_up("submitit", "submitit.slurm.slurm", "SlurmInfoWatcher")
    shared = _look_up("submitit", "submitit.slurm.slurm", "SlurmJob.watcher")
    assert isinstance(shared, watcher_type), "submitit: SlurmJob.watcher is no longer a shared SlurmInfoWatcher"
    assert getattr(watcher_type(delay_s=7), "_delay_s", None) == 7, "submitit: SlurmInfoWatcher._delay_s is gone"


def test_the_basic_sweeper_holds_the_launcher_we_wrap():
    """resumable_sweeper.ResumableSweeper.setup replaces ``self.launcher`` after BasicSweeper.setup set it."""
    sweeper = _look_up("hydra-core", "hydra._internal.core_plugins.basic_sweeper", "BasicSweeper")(max_batch_size=None)
    assert hasattr(sweeper, "launcher"), "hydra-core: BasicSweeper has no launcher attribute"
    parameters = set(inspect.signature(sweeper.setup).parameters)
    assert parameters == {"hydra_context", "task_function", "config"}, f"hydra-core: BasicSweeper.setup{parameters}"


def test_lightnings_convert_params_turns_a_namespace_into_a_dict():
    from argparse import Namespace

    convert = _look_up("lightning", "lightning.fabric.utilities.logger", "_convert_params")
    assert convert(Namespace(lr=0.1)) == {"lr": 0.1}, "lightning: _convert_params no longer converts a Namespace"
