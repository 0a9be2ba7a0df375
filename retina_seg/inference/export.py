"""Export a checkpoint: torch.export's program (.pt2), ONNX and TorchScript returning probabilities for any H/W,
safetensors weights, model card.

The .pt2 program comes from torch.export with the batch, height and width dynamic: the U-Net's size arithmetic
(padding of odd sizes, mirror padding) stays symbolic, so one program serves every size the network accepts.
ONNX and TorchScript come from tracing (torch.jit.trace; ONNX through torch's TorchScript-based exporter, since the
newer torch.export-based one needs onnxscript, which is not a dependency); the tracer records that arithmetic as
graph operations. TorchScript is deprecated since torch 2.13 and stays only while torch still loads it. Every
export is checked against the PyTorch model at several sizes before the export counts as done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from ..data.synthetic import synthesize_fundus
from ..models.unet import vessel_probability
from ..records.bundle import weights_file
from ..records.checkpoint import RunInfo
from ..utils.atomic import write_atomic, write_json_atomic, write_text_atomic
from .model_card import build_card, render_markdown
from .predictor import VesselPredictor
from .settings import ExportSettings

log = logging.getLogger(__name__)

FILE_NAMES = {
    "pt2": "model.pt2",
    "onnx": "model.onnx",
    "safetensors": "model.safetensors",
    "torchscript": "model.torchscript.pt",
}
CARD_JSON, CARD_MARKDOWN = "model_card.json", "MODEL_CARD.md"
INPUT_NAME, OUTPUT_NAME = "image", "probability"
EXTRA_FILE_METADATA = "retina_seg.json"  # the run metadata inside the .pt2 and TorchScript archives
# torch 2.13 deprecates every torch.jit entry point; a TorchScript export is asked for by name, so its notice is noise.
TORCHSCRIPT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


class ExportError(RuntimeError):
    """An export that could not be made or does not match the PyTorch model; the message says which."""


class ProbabilityNet(nn.Module):
    """The network and its output activation: exports return vessel probabilities [B, 1, H, W]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return vessel_probability(self.net(image))


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parity_inputs(predictor: VesselPredictor, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Normalised [1, C, H, W] float32 inputs made from synthetic photographs of each (height, width)."""
    inputs = []
    for seed, (height, width) in enumerate(sizes):
        image, _, _ = synthesize_fundus(seed, height, width)
        inputs.append(np.ascontiguousarray(predictor.whole_input(image)[None]))
    return inputs


def run_metadata(info: RunInfo, checkpoint_sha256: str) -> dict[str, str]:
    """What a user of any export needs besides the graph, as text: input scaling, channels, threshold, the
    training FOV diameter (the scale to put photographs at), the colour standard to map photographs to before
    normalising (null: none), and the checkpoint it came from."""
    return {
        "model": json.dumps(info.model),
        "normalize": json.dumps(info.normalize),
        "channels": str(info.channels),
        "threshold": repr(float(info.threshold)),
        "fov_diameter": json.dumps(info.fov_diameter),
        "colour": json.dumps(info.colour),
        "checkpoint_sha256": checkpoint_sha256,
    }


def export_program(model: ProbabilityNet, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    """torch.export's program with dynamic batch, height and width; the metadata rides along as the archive's extra
    file `retina_seg.json`. Load it with ``torch.export.load(path).module()``."""
    batch = torch.cat([example, example])  # an example batch of one would fix the batch size at one
    dynamic = {INPUT_NAME: {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}}
    program = torch.export.export(model, (batch,), dynamic_shapes=dynamic)
    extra = {EXTRA_FILE_METADATA: json.dumps(metadata)}
    write_atomic(path, lambda tmp: torch.export.save(program, str(tmp), extra_files=extra))


def export_torchscript(model: ProbabilityNet, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    """The metadata rides along as the archive's extra file `retina_seg.json`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATED, category=DeprecationWarning)
        traced = torch.jit.trace(model, example)
        extra = {EXTRA_FILE_METADATA: json.dumps(metadata)}
        write_atomic(path, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=extra))


def _onnx_with_metadata(
    model: ProbabilityNet, example: torch.Tensor, tmp: Path, opset: int, metadata: dict[str, str]
) -> None:
    import onnx

    dynamic = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model,
        (example,),
        str(tmp),
        dynamo=False,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
    )
    graph = onnx.load(str(tmp))
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(tmp))


def export_onnx(model: ProbabilityNet, example: torch.Tensor, path: Path, opset: int, metadata: dict[str, str]) -> None:
    """The metadata goes into the model's metadata_props."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        write_atomic(path, lambda tmp: _onnx_with_metadata(model, example, tmp, opset, metadata))


def export_safetensors(net: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """The weights alone, with the run info as metadata (safetensors metadata is text only)."""
    from safetensors.torch import save_file

    tensors = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def runner(kind: str, path: Path, info: RunInfo) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a normalised [B, C, H, W] array to probabilities, running the exported file."""
    if kind == "pt2":
        program = torch.export.load(str(path)).module()
        return lambda batch: program(torch.from_numpy(batch)).detach().numpy()
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATED, category=DeprecationWarning)
            module = torch.jit.load(str(path))
        return lambda batch: module(torch.from_numpy(batch)).detach().numpy()
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
    from safetensors.torch import load_file

    net = instantiate(info.model, _recursive_=False).eval()  # the checkpoint's own model, its target already checked
    net.load_state_dict(load_file(str(path)))
    model = ProbabilityNet(net)
    return lambda batch: model(torch.from_numpy(batch)).detach().numpy()


def reference_outputs(model: ProbabilityNet, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.inference_mode():
        return [model(torch.from_numpy(batch)).numpy() for batch in inputs]


def check_parity(
    run: Callable[[np.ndarray], np.ndarray],
    inputs: list[np.ndarray],
    expected: list[np.ndarray],
    tolerance: float,
    path: Path,
) -> dict[str, float]:
    """Max |probability difference| per input size; an export beyond the tolerance is an error."""
    differences = {}
    for batch, wanted in zip(inputs, expected):
        actual = run(batch)
        size = f"{batch.shape[2]}x{batch.shape[3]}"
        if actual.shape != wanted.shape:
            raise ExportError(f"{path}: output {actual.shape} at input {size}, expected {wanted.shape}")
        differences[size] = float(np.abs(actual - wanted).max())
    worst = max(differences.values())
    if worst >= tolerance:
        raise ExportError(
            f"{path}: differs from the PyTorch model by up to {worst:.2e} (tolerance {tolerance:.0e}) "
            f"at input sizes {differences}"
        )
    return differences


def _require_extra(formats: list[str]) -> None:
    """onnx and onnxruntime are the optional `export` extra: say so rather than fail on import."""
    needed = {"onnx": ("onnx", "onnxruntime")}
    for kind in formats:
        for module in needed.get(kind, ()):
            try:
                __import__(module)
            except ImportError as error:
                raise ExportError(
                    f"formats: {kind} needs {module}, from the export extra (pip install 'retina-seg[export]')"
                ) from error


def export_checkpoint(settings: ExportSettings) -> dict[str, Any]:
    """Write each requested export, check it against the PyTorch model, then write the model card."""
    _require_extra(settings.formats)
    predictor = VesselPredictor.from_checkpoint(settings.ckpt_path, channels_last=False)
    model = ProbabilityNet(predictor.net).eval()
    inputs = parity_inputs(predictor, settings.parity_sizes)
    expected = reference_outputs(model, inputs)
    example = torch.from_numpy(inputs[0])
    checkpoint = weights_file(settings.ckpt_path)  # a bundled model's weights.safetensors
    checkpoint_sha256 = sha256(checkpoint)
    metadata = run_metadata(predictor.info, checkpoint_sha256)
    exports = {}
    for kind in settings.formats:
        path = settings.output / FILE_NAMES[kind]
        if kind == "pt2":
            export_program(model, example, path, metadata)
        elif kind == "torchscript":
            export_torchscript(model, example, path, metadata)
        elif kind == "onnx":
            export_onnx(model, example, path, settings.onnx_opset, metadata)
        else:
            export_safetensors(predictor.net, path, metadata)
        parity = check_parity(runner(kind, path, predictor.info), inputs, expected, settings.parity_tolerance, path)
        exports[kind] = {"file": path.name, "sha256": sha256(path), "parity_max_abs_diff": parity}
        log.info("Exported %s to %s (max abs difference %.1e)", kind, path, max(parity.values()))
    card = build_card(checkpoint, checkpoint_sha256, predictor.net, predictor.info, settings.run_dir, exports)
    write_json_atomic(settings.output / CARD_JSON, card)
    write_text_atomic(settings.output / CARD_MARKDOWN, render_markdown(card))
    return card
