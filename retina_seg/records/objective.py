"""What a sweep optimises: one validation metric of the run record and whether higher or lower is better.

`retina-seg-train` returns its value to the sweeper and writes it into metrics.json (``objective``); the report
ranks by it; a search sweeper optimises it. Test metrics are never used to choose anything: a setting chosen on
the test split would make its test score an optimistic estimate, so the objective is a validation metric only.
"""

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from ..config_rules import Rule, one_of

# The validation metrics metrics.json records (val_loss, and the FOV and all-pixel scores at the chosen threshold).
_SCORES = ("IoU", "Dice", "accuracy", "sensitivity", "specificity", "precision", "AUC")
VALIDATION_METRICS = ("val_loss", *(f"val_{score}{region}" for score in _SCORES for region in ("", "_all")))
MODES = ("max", "min")
VALIDATION_ONLY = "test metrics are never used to choose anything"
OBJECTIVE_KEY = "objective"  # its key in metrics.json


@dataclass(frozen=True)
class Objective:
    metric: str = "val_IoU"
    mode: str = "max"

    def value_in(self, record: dict[str, Any]) -> float | None:
        """The objective's value in a run record (metrics.json), None when the run did not record it."""
        return _number(record.get(self.metric))

    def ranking_key(self, value: float | None) -> float:
        """Sorts values best first (ascending); a missing value last."""
        if value is None:
            return float("inf")
        return -value if self.mode == "max" else value

    def as_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """metrics.json's ``objective``: the metric, its mode and its value in ``record``."""
        return {"metric": self.metric, "mode": self.mode, "value": self.value_in(record)}


def objective_of(cfg: DictConfig) -> Objective:
    """The objective a training config names (``optimized_metric``, ``optimized_mode``)."""
    return Objective(cfg.get("optimized_metric") or Objective.metric, cfg.get("optimized_mode") or Objective.mode)


def recorded_objective(record: dict[str, Any]) -> tuple[Objective, float | None] | None:
    """The objective a run record holds and its value; None for a record without one (a failed, running or
    older run)."""
    entry = record.get(OBJECTIVE_KEY)
    if not isinstance(entry, dict) or entry.get("metric") not in VALIDATION_METRICS or entry.get("mode") not in MODES:
        return None
    return Objective(entry["metric"], entry["mode"]), _number(entry.get("value"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# The training config's checks of the objective (run with train's value rules, retina_seg/training/run_config.py).
OBJECTIVE_RULES = (
    Rule(
        "optimized_metric",
        lambda value, cfg: value in VALIDATION_METRICS,
        f"a validation metric ({VALIDATION_ONLY}): one of {list(VALIDATION_METRICS)}",
    ),
    one_of("optimized_mode", MODES),
)
