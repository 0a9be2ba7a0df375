"""Every option of every config group composes with the defaults and instantiates into real objects."""

from pathlib import Path

import albumentations as A
import lightning.pytorch as pl
import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from retina_seg.config import CONF_DIR, ConfigError, validate_config
from retina_seg.config_rules import check_config
from retina_seg.config_schemas import EVAL_RULES, SCHEMAS
from retina_seg.data.transforms import build_pipeline
from retina_seg.deprecations import RENAMED_OPTIONS
from retina_seg.training.pipeline import build_module, build_trainer
from tests.helpers.dataset_trees import chase_db1_tree, hrf_tree
from tests.helpers.runs import TINY_RUN, compose

GROUPS = (
    "data",
    "augmentation",
    "model",
    "module",
    "loss",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "experiment",
)
# Options whose objects need hardware or services this machine lacks; they are composed and resolved here and
# exercised by their own tests (Comet: tests/integration/test_comet*.py).
COMPOSE_ONLY = {("trainer", "gpu"), ("experiment", "kaggle_gpu"), ("logger", "comet"), ("logger", "many")}


def options():
    """Every option but the old names, which compose to their new ones (tests/integration/test_deprecated_names.py)."""
    for group in GROUPS:
        for path in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
            if path.stem not in RENAMED_OPTIONS.get(group, {}):
                yield group, path.stem


def real_data_overrides(cfg, request):
    """Point a config that reads a data set on disk at ../shared/data, with a few images only."""
    source = cfg.data.source._target_
    if source.endswith("MultiSource"):  # each source of data=multi pointed as its own data config is
        return [
            _for_source(name, override)
            for name, each in cfg.data.source.sources.items()
            for override in real_data_overrides(OmegaConf.create({"data": {"source": each}}), request)
        ]
    if source.endswith("KaggleSource"):
        return [
            f"data.root={request.getfixturevalue('kaggle_root')}",
            "data.source.limit_train=8",
            "data.source.n_val=4",
            "data.source.limit_test=2",
        ]
    if source.endswith("DriveSource"):
        return [
            f"data.root={request.getfixturevalue('drive_root')}",
            "data.source.limit_train=4",
            "data.source.n_val=2",
            "data.source.limit_test=2",
        ]
    if source.endswith("StareSource"):
        return [
            f"data.root={request.getfixturevalue('stare_root')}",
            "data.source.limit_train=4",
            "data.source.n_val=2",
            "data.source.limit_test=2",
        ]
    # Not in ../shared: synthetic photographs written in their layouts (children 01-03 and 11; numbers 01-02 and 06).
    generated = request.getfixturevalue("tmp_path") / "generated"
    if source.endswith("ChaseDb1Source"):
        return [f"data.root={chase_db1_tree(generated, [1, 2, 3, 11], size=96)}", "data.source.n_val=2"]
    if source.endswith("HrfSource"):
        return [f"data.root={hrf_tree(generated, [1, 2, 6], size=96)}", "data.source.n_val=3"]
    return []


def _for_source(name: str, override: str) -> str:
    """A single set's data override (data.root=..., data.source.<key>=...) for data=multi's source ``name``."""
    key, value = override.split("=", 1)
    key = "root" if key == "data.root" else key.removeprefix("data.source.")
    return f"data.source.sources.{name}.{key}={value}"


@pytest.mark.parametrize("group, option", list(options()))
def test_option_composes_and_instantiates(group, option, tmp_path, request):
    cfg = compose([f"{group}={option}"], tmp_path)
    if group in ("data", "experiment"):  # the others keep the synthetic set, which needs no folder
        cfg = compose([f"{group}={option}", *real_data_overrides(cfg, request)], tmp_path)
    OmegaConf.resolve(cfg)
    if (group, option) in COMPOSE_ONLY:
        return
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape[1] == datamodule.in_channels and batch["mask"].shape[1] == 1
    module = build_module(cfg, datamodule.in_channels)
    logits = module.net(batch["image"][:1])
    assert logits.shape[-2:] == batch["image"].shape[-2:]
    loss = module.loss(logits, batch["mask"][:1], batch["fov"][:1])
    assert torch.isfinite(loss)
    assert isinstance(build_trainer(cfg), pl.Trainer)


def test_every_group_has_the_options_users_were_promised():
    have = set(options())
    for wanted in [
        ("data", "synthetic"),
        ("data", "retina_kaggle"),
        ("data", "drive"),
        ("model", "unet_reference"),
        ("augmentation", "reference"),
        ("augmentation", "none"),
        ("optimizer", "adam"),
        ("optimizer", "adamw"),
        ("optimizer", "sgd"),
        ("loss", "bce"),
        ("loss", "dice"),
        ("loss", "bce_dice"),
        ("loss", "bce_lovasz"),
        ("trainer", "ddp"),
    ]:
        assert wanted in have, wanted


def test_reference_augmentation_is_the_reference_pipeline(tmp_path):
    cfg = compose(["augmentation=reference"], tmp_path)
    augmentation = instantiate(cfg.data.augmentation, _convert_="object")
    names = [type(t).__name__ for t in build_pipeline(augmentation["train"], None).transforms]
    assert names == ["Resize", "HorizontalFlip", "VerticalFlip", "Rotate", "Sharpen", "Emboss"]


def test_augmentation_is_chosen_and_edited_at_one_key_and_reaches_the_datamodule(tmp_path):
    cfg = compose(["augmentation=crops", "augmentation.train.crop.height=96", "~augmentation.train.hflip"], tmp_path)
    assert OmegaConf.to_container(cfg.data.augmentation, resolve=True) == OmegaConf.to_container(cfg.augmentation)
    transforms = instantiate(cfg.data, _convert_="object").train_pipeline.transforms
    assert [type(t).__name__ for t in transforms][:2] == ["RandomCrop", "VerticalFlip"]
    assert (transforms[0].height, transforms[0].width) == (96, 256)


def test_augmentation_moves_mask_and_fov_with_the_image(tmp_path):
    """A geometric transform must move image, mask and FOV together (the pipeline's additional target)."""
    pipeline = build_pipeline({"flip": A.HorizontalFlip(p=1.0)}, None)
    image = torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()
    image[:, :2] = 255
    mask = (image[..., 0] > 0).astype("uint8")
    out = pipeline(image=image, mask=mask, fov=mask.copy())
    assert (out["image"][..., 0] > 0).tolist() == (out["mask"] > 0).tolist() == (out["fov"] > 0).tolist()
    assert out["mask"][:, -2:].all() and not out["mask"][:, :2].any()


def test_default_model_is_small_and_reference_model_is_31m(tmp_path):
    small = build_module(compose([], tmp_path), 3).net
    reference = build_module(compose(["model=unet_reference"], tmp_path), 3).net
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(small) < 1e6 and 30e6 < count(reference) < 32e6


def test_tiny_run_overrides_compose(tmp_path):
    cfg = compose(TINY_RUN, tmp_path)
    assert cfg.trainer.max_epochs == 2 and cfg.data.source.height == 64


@pytest.mark.parametrize("data", ["synthetic", "retina_kaggle", "drive"])
def test_eval_composes_and_resolves_with_every_data_option(data, tmp_path):
    cfg = compose(["ckpt_path=x.ckpt", f"data={data}"], tmp_path, config_name="eval")
    OmegaConf.resolve(cfg)
    assert cfg.split == "test" and cfg.data.batch_size >= 1


@pytest.mark.parametrize("shown", [True, False])
def test_hiding_the_progress_bar_drops_the_callbacks_bar(shown, tmp_path):
    cfg = compose([f"trainer.enable_progress_bar={str(shown).lower()}"], tmp_path)
    trainer = build_trainer(cfg)
    bars = [c for c in trainer.callbacks if isinstance(c, pl.callbacks.ProgressBar)]
    assert len(bars) == (1 if shown else 0)
    assert any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in trainer.callbacks)


# What each entrypoint needs on top of its config file to compose, and one override of a wrong type.
ENTRYPOINTS = {
    "train": ([], "seed=abc", "seed"),
    "eval": (["ckpt_path=x.ckpt"], "threshold=high", "threshold"),
    "predict": (["ckpt_path=x.ckpt", "input=photos", "output=out"], "batch_size=many", "batch_size"),
    "export": (["ckpt_path=x.ckpt", "output=out"], "parity.tolerance=tight", "parity.tolerance"),
}


@pytest.mark.parametrize("config_name", sorted(ENTRYPOINTS))
def test_every_entrypoint_schema_refuses_unknown_keys_and_wrong_types(config_name, tmp_path):
    required, wrong_type, key = ENTRYPOINTS[config_name]
    for override, named in ((wrong_type, key), ("no_such_key=1", "no_such_key")):
        with pytest.raises(ConfigCompositionException) as error:
            compose([*required, override], tmp_path, config_name=config_name)
        assert f"full_key: {named}" in str(error.value.__cause__)
    assert OmegaConf.get_type(compose(required, tmp_path, config_name=config_name)) is SCHEMAS[config_name]


@pytest.mark.parametrize(
    "override, message",
    [
        ("threshold=1.5", "threshold=1.5 must be null (the checkpoint's) or a number in (0, 1)"),
        ("threshold=0", "threshold=0.0 must be null (the checkpoint's) or a number in (0, 1)"),
        ("split=train", "split='train' must be one of ['val', 'test']"),
        ("scale.tolerance=1", "scale.tolerance=1.0 must be a number in [0, 1)"),
        ("scale.train_fov_diameter=0", "scale.train_fov_diameter=0.0 must be null (the checkpoint's) or pixels > 0"),
    ],
)
def test_eval_values_are_checked_naming_key_and_value(override, message, tmp_path):
    cfg = compose(["ckpt_path=x.ckpt", override], tmp_path, config_name="eval")
    with pytest.raises(ConfigError) as error:
        check_config(cfg, EVAL_RULES)
    assert str(error.value) == f"invalid config: {message}"


def test_eval_defaults_pass_its_rules(tmp_path):
    check_config(compose(["ckpt_path=x.ckpt", "threshold=0.4", "split=val"], tmp_path, config_name="eval"), EVAL_RULES)


def test_train_rules_report_every_bad_value_at_once(tmp_path):
    with pytest.raises(ConfigError) as error:  # composed as retina-seg-train settles it: checked too
        compose(["optimizer.lr=0", "data.batch_size=0", "module.threshold=1"], tmp_path)
    assert str(error.value) == (
        "invalid config: data.batch_size=0 must be an integer >= 1; optimizer.lr=0 must be "
        "a number > 0; module.threshold=1 must be null or in (0, 1)"
    )
    validate_config(compose(TINY_RUN, tmp_path))


def test_runs_outside_the_reference_sweep_have_a_null_reference_job_id(tmp_path):
    assert compose([], tmp_path).reference_job_id is None
