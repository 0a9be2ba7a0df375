"""Comet tracking: one experiment per run, online with COMET_API_KEY, else a Comet offline archive.

The decision rule (printed at the start of every run):

- ``mode: auto``: online when ``COMET_API_KEY`` is in the environment, offline otherwise;
- ``mode: online``: online, and an error when the key is missing; ``mode: offline``: always offline.

Offline, the run writes ``<run>/comet/<experiment key>.zip`` at its end and prints the ``comet upload``
command that sends it later. Online, the server is probed first (``connect_timeout_s``); when it cannot be
reached or does not accept the experiment, the run continues offline if ``offline_fallback`` is true and
fails at once otherwise. The API key is read from the environment only, by comet_ml itself: it is never
a config value, a parameter or a logged value, and it is masked in Comet's own log messages.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# comet_ml reads these when it is imported, so they are set here, before the logger imports it, and only
# where the user has not chosen otherwise. Lightning logs explicitly, so Comet's import-time patching of
# torch (the "import comet_ml before torch" warning) is not needed; the other two stop Sentry telemetry
# and the cloud-metadata probes, so an offline run makes no connection attempt at all.
COMET_ENVIRONMENT_DEFAULTS = {
    "COMET_DISABLE_AUTO_LOGGING": "1",
    "COMET_ERROR_TRACKING_ENABLE": "false",
    "COMET_AUTO_LOG_ENV_DETAILS": "false",
    "COMET_DISABLE_ANNOUNCEMENT": "true",
}
for _name, _value in COMET_ENVIRONMENT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.logger import _convert_params
from lightning.pytorch.loggers import CometLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from ..config import ConfigError
from ..records.groups import GROUP_PARAMETER, SWEEP_PARAMETER, flatten_config, group_key
from ..records.run_folder import PROGRESS_PNG, RunStatus
from .secrets import mask_in_comet_logs

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "COMET_API_KEY"
DEFAULT_PROJECT = "retina-seg"
OFFLINE_FOLDER = "comet"
MODES = ("auto", "online", "offline")

# What comet_ml records on its own is switched off: the run logs its config, metrics and images itself,
# and nothing else (no source code, git patch, console capture, argv, host or system details).
QUIET_EXPERIMENT = dict(
    log_code=False,
    log_graph=False,
    auto_param_logging=False,
    auto_metric_logging=False,
    parse_args=False,
    auto_output_logging=False,
    log_env_details=False,
    log_git_metadata=False,
    log_git_patch=False,
    log_env_gpu=False,
    log_env_host=False,
    log_env_cpu=False,
    log_env_network=False,
    log_env_disk=False,
    display_summary_level=0,
)


class CometStartError(RuntimeError):
    """A Comet experiment that cannot start as configured; the message says why and what to change."""


def choose_mode(mode: str, environ: Mapping[str, str] = os.environ) -> tuple[bool, str]:
    """(online?, the reason in words) from ``logger.comet.mode`` and whether the environment has a key."""
    has_key = bool(environ.get(API_KEY_VARIABLE))
    if mode == "offline":
        return False, "logger.comet.mode=offline"
    if mode == "online":
        if not has_key:
            raise CometStartError(
                f"logger.comet.mode=online needs {API_KEY_VARIABLE} in the environment "
                "(it is never read from the config); set it, or use logger.comet.mode=auto"
            )
        return True, f"logger.comet.mode=online and {API_KEY_VARIABLE} is set"
    if mode == "auto":
        return has_key, f"{API_KEY_VARIABLE} is set" if has_key else f"no {API_KEY_VARIABLE} in the environment"
    raise ConfigError(f"logger.comet.mode={mode!r} must be one of {list(MODES)}")


def server_problem(url: str, timeout_s: float) -> str | None:
    """Why the Comet server at ``url`` cannot be reached, or None: one request, no retries, no API key."""
    import requests

    try:
        requests.get(url, timeout=timeout_s)
    except requests.exceptions.SSLError:
        return None  # it answered; comet_ml applies its own TLS settings
    except requests.RequestException as error:
        reason = getattr(error.args[0], "reason", None) if error.args else None  # urllib3's innermost cause
        return f"cannot reach the Comet server {url} within {timeout_s} s ({reason or error})"
    return None


class CometRunLogger(CometLogger):
    """Lightning's CometLogger with the run's identity, an explicit online/offline choice, and per-epoch steps.

    The experiment is created on rank 0 only (Lightning's rule), one per logger, and ended by
    ``finish_run`` (or by a failed fit), so sequential runs in one process each get their own experiment.
    Metrics reach Comet during fitting only, one point per epoch with the epoch as step; the final values
    (val at the chosen threshold, test) come from ``finish_run`` at the step after the last epoch.
    """

    def __init__(
        self,
        run_dir: str | Path,
        mode: str = "auto",
        workspace: str | None = None,
        project: str | None = None,
        sweep_name: str | None = None,
        offline_fallback: bool = True,
        connect_timeout_s: float = 5,
    ):
        self._goes_online, self._reason = choose_mode(mode)
        self._run_dir = Path(run_dir)
        self._offline_dir = self._run_dir / OFFLINE_FOLDER
        self._sweep_name, self._offline_fallback = sweep_name, offline_fallback
        self._connect_timeout_s = connect_timeout_s
        self._trainer_state = None
        self._ended = self._config_logged = False
        super().__init__(
            workspace=workspace or os.environ.get("COMET_WORKSPACE"),
            project=project or os.environ.get("COMET_PROJECT_NAME") or DEFAULT_PROJECT,
            offline_directory=str(self._offline_dir),
        )

    def _create_experiment(self) -> None:
        """Called on rank 0 only (by Lightning); says which mode was chosen and where the archive goes."""
        end_leftover_experiment()
        self._experiment = self._start_online() if self._goes_online else self._start_offline(self._reason)
        self._experiment_key = self._experiment.get_key()
        self._project_name = self._experiment.project_name

    def _start_offline(self, reason: str):
        import comet_ml

        self._offline_dir.mkdir(parents=True, exist_ok=True)
        experiment = comet_ml.OfflineExperiment(
            project_name=self._project_name,
            workspace=self._workspace,
            offline_directory=str(self._offline_dir),
            **QUIET_EXPERIMENT,
        )
        log.info(
            "Comet: offline (%s); archive at the end of the run: %s",
            reason,
            self._offline_dir / f"{experiment.get_key()}.zip",
        )
        return experiment

    def _start_online(self):
        import comet_ml
        from comet_ml.config import get_api_key, get_backend_address, get_config

        key = get_api_key(None, get_config())  # also points comet_ml at the server a key may name
        mask_in_comet_logs(key)
        server = get_backend_address()
        problem = server_problem(server, self._connect_timeout_s)
        if problem is None:
            experiment = comet_ml.Experiment(
                project_name=self._project_name,
                workspace=self._workspace,
                offline_directory=str(self._offline_dir),
                **QUIET_EXPERIMENT,
            )
            if experiment.alive:
                log.info("Comet: online (%s); experiment %s", self._reason, experiment.url)
                return experiment
            experiment.end()
            problem = (
                f"the Comet server {server} did not accept the experiment (an invalid {API_KEY_VARIABLE}, "
                "workspace or project; Comet's message is above)"
            )
        if not self._offline_fallback:
            raise CometStartError(
                f"Comet online run cannot start: {problem}. Fix it, or run with "
                "logger.comet.offline_fallback=true (continue offline) or logger.comet.mode=offline"
            )
        log.warning("Comet: %s; continuing offline (logger.comet.offline_fallback=true)", problem)
        return self._start_offline("the online start failed, see above")

    @rank_zero_only
    def start_run(self, trainer, record: dict[str, Any]) -> None:
        """Name the experiment by the job id; tag it; log the resolved config as flattened parameters, and the
        sweep and group key beside it, so Comet's "group by" shows the report's groups."""
        self._trainer_state = trainer.state
        experiment = self.experiment
        experiment.set_name(str(record["job_id"]))
        identity = sweep_identity(record, self._sweep_name)
        experiment.add_tags(run_tags(record, identity))
        self.log_hyperparams(record.get("config") or {})
        experiment.log_parameters(
            {name: identity[name] for name in (SWEEP_PARAMETER, GROUP_PARAMETER) if identity[name] is not None}
        )
        self._config_logged = True
        experiment.log_others(
            {
                "status": RunStatus.RUNNING,
                "job_id": record["job_id"],
                "git_commit": record.get("git_commit"),
                "slurm_job_id": record.get("slurm_job_id"),
                "run_dir": str(self._run_dir),
            }
        )

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Flattened with dots. Once ``start_run`` logged the whole resolved config, Lightning's own call
        (the module's hparams, already in it as ``module.*``) is skipped rather than logged a second time."""
        if self._ended or self._config_logged:
            return
        super().log_hyperparams(flatten_config(_convert_params(params)))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Epoch-level metrics of the fit only, with the epoch as step (``train_loss_epoch`` -> ``train_loss``).

        Step-level values stay in the CSV log; the post-fit validation and the test are logged by
        ``finish_run`` with the threshold chosen on val.
        """
        if self._ended or (self._trainer_state is not None and self._trainer_state.fn != TrainerFn.FITTING):
            return
        epoch = metrics.get("epoch")
        values = {
            name.removesuffix("_epoch"): float(value)
            for name, value in metrics.items()
            if name != "epoch" and not name.endswith("_step")
        }
        if epoch is not None and values:
            self.experiment.log_metrics(values, step=int(epoch), epoch=int(epoch))

    @rank_zero_only
    def log_image(self, image: Any, name: str, step: int) -> None:
        if not self._ended:
            self.experiment.log_image(image, name=name, step=step)

    @rank_zero_only
    def finish_run(self, trainer, record: dict[str, Any]) -> None:
        """Final scores at the step after the last epoch, the best checkpoint, the progress plot; then end."""
        step = trainer.current_epoch
        final = {
            k: float(v)
            for k, v in record.items()
            if k.startswith(("val_", "test_")) and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        experiment = self.experiment
        experiment.log_metrics(final, step=step, epoch=step)
        experiment.log_others(
            {
                "epochs_done": step,
                "threshold": record.get("threshold"),
                "best_epoch": record.get("best_epoch"),
                "wall_time_s": record.get("wall_time_s"),
                "best_checkpoint": record.get("best_checkpoint"),
                "best_checkpoint_score": best_checkpoint_score(trainer),
            }
        )
        plot = self._run_dir / PROGRESS_PNG
        if plot.exists():
            experiment.log_image(str(plot), name="progress", step=step)
        self._end(record.get("status", RunStatus.COMPLETED))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Lightning calls this after fit, validate and test; a failure ends the experiment (archive kept)."""
        if self._experiment is None or self._ended:
            return
        if status == RunStatus.FAILED:
            self._end(RunStatus.FAILED)
        else:
            self._experiment.flush()

    def _end(self, status: str) -> None:
        self._ended = True
        self._experiment.log_other("status", status)
        self._experiment.end()
        for archive in sorted(Path(self._archive_dir()).glob(f"{self._experiment_key}*.zip")):
            log.info("Comet offline archive: %s\nSend it to Comet later with:  comet upload %s", archive, archive)

    def _archive_dir(self) -> str:
        """Where the archive really is: comet_ml falls back to a temporary folder when ours is not writable."""
        return getattr(self._experiment, "offline_directory", None) or str(self._offline_dir)


def end_leftover_experiment() -> None:
    """comet_ml keeps one experiment per process. One still running here belongs to an earlier run of a
    sequential sweep that failed outside Lightning's hooks: it is ended as failed, so its archive is kept."""
    import comet_ml

    leftover = comet_ml.get_running_experiment()
    if leftover is not None and not leftover.ended:
        log.warning("Comet: ending experiment %s left running by an earlier run in this process", leftover.get_key())
        leftover.log_other("status", str(RunStatus.FAILED))
        leftover.end()


def sweep_identity(record: dict[str, Any], sweep_name: str | None) -> dict[str, Any]:
    """The sweep's name (``logger.comet.sweep_name``, else the multirun folder's name), the run's group key
    (records/groups.py, replicate key ``seed``) and its seed: what puts replicates of one setting together."""
    sweep = sweep_name
    if sweep is None and HydraConfig.initialized():
        hydra = HydraConfig.get()
        if hydra.mode == RunMode.MULTIRUN:
            sweep = Path(hydra.sweep.dir).name
    config = record.get("config") or {}
    return {SWEEP_PARAMETER: sweep, GROUP_PARAMETER: group_key(config), "seed": config.get("seed")}


def run_tags(record: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """sweep, group, seed, launcher, model, data and git commit: what the Comet project view groups and filters
    by."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    tags = {
        "sweep": identity[SWEEP_PARAMETER],
        "group": identity[GROUP_PARAMETER],
        "seed": identity["seed"],
        "launcher": choices.get("hydra/launcher"),
        "model": choices.get("model"),
        "data": choices.get("data"),
        "git": (record.get("git_commit") or "")[:12] or None,
    }
    return [f"{name}:{value}" for name, value in tags.items() if value is not None and value != ""]


def best_checkpoint_score(trainer) -> float | None:
    """The monitored val_IoU of the best checkpoint (at the fit's threshold), or None without one."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor == "val_IoU" and callback.best_model_score is not None:
            return float(callback.best_model_score)
    return None
