"""The objective: a validation metric and its direction, read back from a run record."""

import pytest

from retina_seg.config import ConfigError, validate_config
from retina_seg.records.objective import OBJECTIVE_RULES, VALIDATION_ONLY, Objective, recorded_objective
from tests.helpers.runs import TINY_RUN, compose


def test_a_record_gives_its_objectives_value_and_ranks_best_first():
    record = {"val_IoU": 0.3, "val_loss": 0.2, "test_IoU": 0.9}
    assert Objective().as_record(record) == {"metric": "val_IoU", "mode": "max", "value": 0.3}
    assert Objective("val_Dice").value_in(record) is None
    values = [0.1, None, 0.3]
    assert sorted(values, key=Objective("val_IoU", "max").ranking_key) == [0.3, 0.1, None]
    assert sorted(values, key=Objective("val_loss", "min").ranking_key) == [0.1, 0.3, None]


def test_metrics_json_objective_reads_back_and_an_older_record_has_none():
    written = {"objective": Objective("val_loss", "min").as_record({"val_loss": 0.25})}
    assert recorded_objective(written) == (Objective("val_loss", "min"), 0.25)
    assert recorded_objective({"val_IoU": 0.3}) is None
    assert recorded_objective({"objective": {"metric": "test_IoU", "mode": "max", "value": 0.9}}) is None


@pytest.mark.parametrize("metric", ["test_IoU", "test_loss", "val_nonsense"])
def test_only_a_recorded_validation_metric_can_be_the_objective(metric, tmp_path):
    with pytest.raises(
        ConfigError, match=rf"optimized_metric='{metric}' must be a validation metric \({VALIDATION_ONLY}"
    ):
        compose([*TINY_RUN, f"optimized_metric={metric}"], tmp_path)
    with pytest.raises(ConfigError, match=r"optimized_mode='up' must be one of \['max', 'min'\]"):
        compose([*TINY_RUN, "optimized_mode=up"], tmp_path)
    validate_config(compose([*TINY_RUN, "optimized_metric=val_loss", "optimized_mode=min"], tmp_path), OBJECTIVE_RULES)
