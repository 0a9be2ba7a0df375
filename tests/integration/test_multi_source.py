"""Training in prediction's geometry (data.fov_diameter) and on several sets at once (data=multi), on real
photographs: a few of each set, tiny networks."""

import json

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from retina_seg.config import ConfigError
from retina_seg.data.datamodule import RetinaDataModule
from retina_seg.data.fov import fov_diameter
from retina_seg.data.geometry import fov_box
from retina_seg.data.sources import DriveSource, MultiSource, StareSource
from retina_seg.evaluation.checkpoint_eval import evaluate
from retina_seg.records.checkpoint import network_from_checkpoint
from retina_seg.training.pipeline import train
from tests.helpers.runs import compose

DIAMETER = 400
SOURCES = ("drive", "stare", "chase_db1")
# Each set's (limit_train, n_val) in the tiny three-set runs: CHASE_DB1's are two children, one validating.
FEW = {"drive": (3, 1), "stare": (3, 1), "chase_db1": (4, 2)}


def vessel_fraction(sample) -> float:
    return float((sample.mask & sample.fov).sum() / sample.fov.sum())


@pytest.mark.parametrize("set_name", ["drive", "stare"])
def test_training_photographs_take_the_fov_diameter_and_val_photographs_keep_their_size(set_name, request):
    source = {"drive": DriveSource, "stare": StareSource}[set_name]
    root = request.getfixturevalue(f"{set_name}_root")

    def make():
        return source(root, n_val=1, limit_train=3, limit_test=1)

    own = make().load()
    datamodule = RetinaDataModule(make(), fov_diameter=DIAMETER)
    datamodule.setup("fit")
    assert len(datamodule.splits.train) == len(own.train) == 2
    for before, after in zip(own.train, datamodule.splits.train):
        top, bottom, left, right = fov_box(before.fov)
        height, width = before.fov.shape
        assert 0 <= top < bottom <= height and 0 <= left < right <= width  # the crop lies inside the photograph
        assert before.fov[top:bottom, left:right].sum() == before.fov.sum()  # and holds the whole FOV
        assert fov_diameter(before.fov) > DIAMETER + 50  # the photograph was shrunk, not left as it was
        assert abs(fov_diameter(after.fov) - DIAMETER) <= 2
        assert after.image.shape == (DIAMETER, DIAMETER, 3) and after.mask.shape == (DIAMETER, DIAMETER)
        assert vessel_fraction(after) == pytest.approx(vessel_fraction(before), rel=0.03)
    assert datamodule.training_fov_diameter() == DIAMETER
    # Validation photographs keep their own size: the image goes to the training scale, mask and FOV do not.
    item, sample = datamodule.dataset("val")[0], own.val[0]
    assert item["mask"].shape[-2:] == sample.mask.shape
    assert item["scale"] == pytest.approx(DIAMETER / fov_diameter(sample.fov))
    assert item["image"].shape[-1] == round(sample.image.shape[1] * item["scale"])


def multi_overrides(request, limit_test: int = 1) -> list[str]:
    """data=multi on a few photographs of each set (CHASE_DB1: two children, one validating), at a small FOV."""
    roots = {name: request.getfixturevalue(f"{name}_root") for name in SOURCES}
    return [
        "data=multi",
        "data.fov_diameter=64",
        *(
            override
            for name in SOURCES
            for override in (
                f"data.source.sources.{name}.root={roots[name]}",
                f"data.source.sources.{name}.limit_train={FEW[name][0]}",
                f"data.source.sources.{name}.n_val={FEW[name][1]}",
                f"data.source.sources.{name}.limit_test={limit_test}",
            )
        ),
    ]


def test_each_sources_share_of_the_training_draws_follows_its_weight(request, tmp_path):
    cfg = compose([*multi_overrides(request), "data.source.weights={stare: 2}"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("fit")
    assert datamodule.source_names == list(SOURCES)
    train = datamodule.splits.train
    assert [s.source for s in train] == ["drive"] * 2 + ["stare"] * 2 + ["chase_db1"] * 2
    sampler = datamodule.train_dataloader().sampler
    torch.manual_seed(0)
    drawn = [train[i].source for _ in range(1000) for i in sampler]
    shares = {name: drawn.count(name) / len(drawn) for name in SOURCES}
    assert shares == pytest.approx({"drive": 0.25, "stare": 0.5, "chase_db1": 0.25}, abs=0.02)


def test_a_tiny_training_on_several_sets_scores_each_and_names_them(request, tmp_path):
    overrides = [
        *multi_overrides(request),
        "model.base_width=4",
        "loss=bce_dice",
        "callbacks=minimal",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    train(compose(overrides, tmp_path), tmp_path, "0")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["data_sources"] == {name: 1.0 for name in SOURCES}
    for split in ("val", "test"):
        pooled = metrics[f"{split}_IoU"]
        each = [metrics[f"{split}_IoU_{name}"] for name in SOURCES]
        assert all(0 <= value <= 1 for value in [pooled, *each])
        assert min(each) <= pooled + 1e-9 and pooled <= max(each) + 1e-9  # pooled counts lie between the sources'
        assert all(f"{split}_Dice_{name}" in metrics for name in SOURCES)
    best = tmp_path / "checkpoints" / "best.ckpt"
    assert network_from_checkpoint(best)[1].fov_diameter == 64
    # Each source's own threshold is the best on its validation photographs: no worse there than the pooled one or
    # two others.
    for name in SOURCES:
        own = metrics[f"threshold_{name}"]
        assert 0.05 <= own <= 0.95, name
        root = request.getfixturevalue(f"{name}_root")
        val_alone = [f"ckpt_path={best}", f"data={name}", f"data.root={root}", "split=val"]
        val_alone += [f"data.source.limit_train={FEW[name][0]}", f"data.source.n_val={FEW[name][1]}"]
        iou = {
            threshold: evaluate(
                compose([*val_alone, f"threshold={threshold}"], tmp_path / f"val_{name}_{threshold}", "eval"),
                tmp_path / f"val_{name}_{threshold}",
            )["val_IoU"]
            for threshold in {own, metrics["threshold"], 0.3, 0.7}
        }
        assert iou[metrics["threshold"]] == pytest.approx(metrics[f"val_IoU_{name}"], abs=1e-6), name  # same photos
        assert iou[own] >= max(iou.values()) - 1e-9, name
    # Each source's test score is that set's own: the checkpoint evaluated on the set alone gives the same number.
    for name in SOURCES:
        root = request.getfixturevalue(f"{name}_root")
        alone = [f"ckpt_path={best}", f"data={name}", f"data.root={root}", "data.source.limit_test=1"]
        record = evaluate(compose(alone, tmp_path / f"eval_{name}", config_name="eval"), tmp_path / f"eval_{name}")
        assert record["test_IoU"] == pytest.approx(metrics[f"test_IoU_{name}"], abs=1e-6), name
    # Evaluated on the sets together, it scores each on its own too, as the training's test did.
    together = compose([f"ckpt_path={best}", *multi_overrides(request)], tmp_path / "eval_multi", config_name="eval")
    record = evaluate(together, tmp_path / "eval_multi")
    assert record["data_sources"] == list(SOURCES)
    for name in SOURCES:
        for score in ("IoU", "Dice"):
            key = f"test_{score}_{name}"
            assert record[key] == pytest.approx(metrics[key], abs=1e-6), key
    assert record["test_IoU"] == pytest.approx(metrics["test_IoU"], abs=1e-6)


def test_leaving_one_set_out_is_one_override(tmp_path):
    cfg = compose(["data=multi", "~data.source.sources.stare"], tmp_path)
    assert list(cfg.data.source.sources) == ["drive", "chase_db1"]
    source = instantiate(cfg.data.source, _convert_="object")
    assert source.names == ["drive", "chase_db1"] and source.weights == {"drive": 1.0, "chase_db1": 1.0}


@pytest.mark.parametrize(
    "weights, message",
    [
        ("{hrf: 1}", "data.source.weights="),
        ("{stare: 0}", "data.source.weights="),
        ("{stare: -1}", "data.source.weights="),
    ],
)
def test_bad_weights_are_refused_naming_the_key(weights, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        compose(["data=multi", f"data.source.weights={weights}"], tmp_path)


def test_each_sources_split_settings_are_checked_naming_the_source(tmp_path):
    overrides = ["data.source.sources.stare.n_val=0", "data.source.sources.chase_db1.limit_train=0"]
    with pytest.raises(ConfigError) as error:
        compose(["data=multi", *overrides], tmp_path)
    assert "data.source.sources.stare.n_val=0 must be an integer >= 1" in str(error.value)
    assert "data.source.sources.chase_db1.limit_train=0 must be null or an integer >= 1" in str(error.value)


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"hrf": 1.0}, r"data.source.weights.hrf: no source 'hrf'"),
        ({"stare": 0}, r"data.source.weights.stare=0 must be a number > 0"),
        ({"stare": -1.5}, r"data.source.weights.stare=-1.5 must be a number > 0"),
    ],
)
def test_the_source_itself_refuses_bad_weights(weights, message, stare_root):
    with pytest.raises(ValueError, match=message):
        MultiSource({"stare": StareSource(stare_root)}, weights)


def test_unknown_or_misnamed_sources_are_refused(tmp_path, stare_root):
    with pytest.raises(ConfigCompositionException, match="data_source/fundus_x"):
        compose(["data=multi", "+data_source@data.source.sources.fundus_x=fundus_x"], tmp_path)
    with pytest.raises(ValueError, match="data.source.sources.STARE: a source's name"):
        MultiSource({"STARE": StareSource(stare_root)})
    with pytest.raises(ValueError, match="data.source.sources names no data set"):
        MultiSource({})


def test_sets_that_binarise_masks_differently_are_refused(tmp_path):
    from retina_seg.training.pipeline import mask_rule

    cfg = compose(["data=multi", "data.source.sources.stare.mask_rule=nonzero"], tmp_path)
    with pytest.raises(ConfigError, match="data.source.sources.stare.mask_rule=nonzero"):
        mask_rule(cfg)
