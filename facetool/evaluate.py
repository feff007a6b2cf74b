"""``facetool evaluate``: run a method's network over a data split and measure it.

Input and target roles come from the method's training streams: the input is the first role of the first stream,
the target the last role of the last stream (pix2pix photo -> drawing; CycleGAN A -> B). Metrics:

- ``l1`` / ``ssim`` / ``psnr``: means over the items that have the target role (paired data); for line-drawing
  targets (:data:`LINE_ROLES`) also ``chamfer``, the symmetric chamfer distance between the strokes in pixels
  (:func:`facetool.metrics.image.chamfer`);
- ``fid`` / ``kid`` (+ ``kid_std``): backbone features of all outputs against all targets of the same split;
- the method's own metrics (``MethodSpec.evaluate``), averaged;
- ``nme`` (with ``--nme DETECTOR``): a face detector finds landmarks on each output and on its reference — the
  target when every item has one, else the input photo (``nme_reference``) — and
  :func:`facetool.metrics.landmarks.nme` compares them (largest face per image; 68 points when both sides of every
  measured item have them, else 5: ``nme_points``). Items where either side has no face are left out of the mean
  and counted in ``nme_found`` (the fraction of items measured).

A method whose output is not one image (``MethodSpec.measure``: a reconstruction's maps) measures itself: it gets
the loaded network and an :class:`EvalRequest` and returns :class:`Measured` (its metrics, the roles it read, the
item count and grid rows); FID / KID / NME do not apply to it.

A network with a true ``takes_points5`` attribute is also given each item's 5 landmarks (``points5=``, crop
pixels), as ``facetool stylize`` gives them. The result is a JSON-ready dict with no clock in it: the same
weights, data and seed give the same JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FacetoolError, UsageError

SPLITS = ("test", "train", "all")
GRID_ITEMS = 8
#: Target roles that are line drawings (ink on white paper): they also get the ``chamfer`` metric.
LINE_ROLES = ("drawing", "loomis")
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class EvalRequest:
    """What ``facetool evaluate`` hands a method's own ``measure``: the data and how to read it."""

    data_dir: Path
    split: str | None  # "train", "test" or None (all items)
    size: int
    batch_size: int
    limit: int | None
    device: str
    options: Any  # the method's options (MethodSpec.options instance)
    train_options: Any  # the options the weights were trained with (None for --oracle)
    seed: int


@dataclass
class Measured:
    """A method's own measurement: ``metrics`` (name -> number or None), ``roles`` (what it read, e.g.
    {"input": "photo", "target": "depth+pncc+mask"}), ``count`` items, ``grid`` rows of (C, H, W) tensors in
    [0, 1] (None = a white tile) for ``grid.png``, ``notes`` (name -> str: what the numbers mean, e.g. the
    baseline's source) for the JSON."""

    metrics: dict[str, Any]
    roles: dict[str, str]
    count: int
    grid: list[tuple[Any, ...]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def _net_extras(net: Any, batch: dict[str, Any], device: str) -> dict[str, Any]:
    """Keyword inputs a network asks for besides the image: ``takes_points5`` nets get the items' 5 points."""
    points = batch.get("points5")
    if getattr(net, "takes_points5", False) and hasattr(points, "to"):  # a stacked tensor, not a ragged list
        return {"points5": points.to(device)}
    return {}


def io_roles(spec: Any, train_options: Any, options: Any = None) -> tuple[str, str]:
    """(input role, target role) of a method: its ``roles`` hook, else from its TrainSpec streams."""
    if spec.roles is not None:
        return spec.roles(options, train_options)
    if spec.train is None:
        raise UsageError(f"method {spec.name} declares no training data, so it has no input/target roles to evaluate")
    streams = list(spec.train.streams(train_options).values())
    if not streams or not streams[0] or not streams[-1]:
        raise FacetoolError(f"method {spec.name}: its training streams name no roles")
    return streams[0][0], streams[-1][-1]


def weights_metadata(path: Path | None) -> dict[str, str]:
    """Metadata of a weights file (safetensors header) or of a run / checkpoint folder (its state.json)."""
    if path is None:
        return {}
    path = Path(path)
    if path.is_dir():
        from .train.checkpoint import read_state

        state = read_state(path)
        run = state.extra.get("run") or {}
        return {"method": state.method, "train_options": json.dumps(state.options),
                "train_settings": json.dumps({k: run[k] for k in ("size",) if k in run})}  # fmt: skip
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for non-safetensors files
        raise FacetoolError(f"{path}: not a safetensors weights file ({str(err).splitlines()[0][:80]})") from None


def trained_size(metadata: dict[str, str]) -> int | None:
    """The crop size the weights were trained at (metadata ``train_settings``), or None when not recorded."""
    try:
        size = json.loads(metadata.get("train_settings") or "{}").get("size")
    except (json.JSONDecodeError, AttributeError):
        return None
    return int(size) if isinstance(size, int) and size > 0 else None


def default_size(spec: Any, weights_path: Path | None, size: int | None) -> int:
    """``--size`` when given, else the size the weights were trained at, else the method's input size; a size the
    method does not run at is a usage error."""
    if size is None:
        size = trained_size(weights_metadata(weights_path)) or spec.input_size
    if size not in spec.sizes:
        raise UsageError(f"--size {size}: method {spec.name} runs at {', '.join(map(str, spec.sizes))}")
    return size


def weights_digest(path: Path | None) -> str | None:
    """sha256 of the weights file; of a run's latest checkpoint weights for a folder."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        from .train.checkpoint import WEIGHTS, latest_checkpoint

        folder = path if (path / WEIGHTS).is_file() else latest_checkpoint(path)
        if folder is None:
            raise FacetoolError(f"{path} has no complete checkpoint")
        path = folder / WEIGHTS
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def train_options_of(spec: Any, metadata: dict[str, str]) -> Any:
    """The training options the weights were made with (metadata ``train_options``), else the defaults."""
    schema = spec.train.options if spec.train is not None else None
    if schema is None:
        return None
    raw = metadata.get("train_options")
    if not raw:
        return schema()
    try:
        values = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError:
        raise FacetoolError("the weights' train_options metadata is not JSON") from None
    known = {f.name for f in dataclasses.fields(schema)}
    try:
        return schema(**{k: v for k, v in values.items() if k in known})
    except (TypeError, ValueError) as err:
        raise FacetoolError(f"the weights' train_options do not fit method {spec.name}: {err}") from None


def _batches(count: int, batch_size: int):
    for start in range(0, count, batch_size):
        yield range(start, min(start + batch_size, count))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _round(value: Any) -> Any:
    """Floats to 6 significant digits: the JSON shows what is measured, not float noise."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def detector_image(image: Any) -> np.ndarray:
    """(C, H, W) float tensor in [0, 1] -> (H, W, 3) uint8 RGB, what detectors take; 1 channel is replicated."""
    import torch

    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy().transpose(1, 2, 0)
    array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]
    return np.ascontiguousarray(array)


def nme_detector_spec(name: str) -> Any:
    """The registered detector ``name`` with its assets checked: UsageError for an unknown name."""
    from .pipeline import check_assets
    from .plugins import get_host

    spec = get_host().detectors.get(name)
    check_assets(spec.assets)
    return spec


class LandmarkNME:
    """Landmark NME of outputs against reference images through a loaded detector (see the module docstring)."""

    def __init__(self, spec: Any, detector: Any, reference: str) -> None:
        self.spec, self.detector, self.reference = spec, detector, reference
        self.items: list[tuple[Any, Any] | None] = []  # per item: (output face, reference face) or None

    def _largest_face(self, image: Any) -> Any:
        from .pipeline import detect_faces

        faces = detect_faces(self.detector, detector_image(image), self.spec.name)
        return faces[0] if faces else None

    def add(self, output: Any, reference: Any) -> None:
        """One item: (C, H, W) output and reference images in [0, 1]."""
        found, expected = self._largest_face(output), self._largest_face(reference)
        self.items.append((found, expected) if found is not None and expected is not None else None)

    def metrics(self) -> dict[str, Any]:
        """``nme`` (mean over measured items), ``nme_found``, ``nme_points``, ``nme_reference``, ``nme_detector``."""
        from .metrics.landmarks import nme

        pairs = [pair for pair in self.items if pair is not None]
        if pairs:
            use68 = all(a.points68 is not None and b.points68 is not None for a, b in pairs)
        else:
            use68 = "points68" in self.spec.features
        values = [nme(a.points68, b.points68) if use68 else nme(a.points5, b.points5) for a, b in pairs]
        values = [v for v in values if np.isfinite(v)]  # a reference with both eyes on one point measures nothing
        return {
            "nme": _mean(values),
            "nme_found": len(values) / len(self.items) if self.items else None,
            "nme_points": 68 if use68 else 5,
            "nme_reference": self.reference,
            "nme_detector": self.spec.name,
        }


def evaluate_method(
    spec: Any,
    data_dir: str | Path,
    weights: str | Path | None,
    options: Any,
    split: str = "test",
    size: int | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    backbone: Any = None,
    nme: str | None = None,
    oracle: bool = False,
) -> dict[str, Any]:
    """Evaluate ``spec``'s network on ``data_dir``; returns the metrics document (see the module docstring).

    Args:
        spec: the :class:`~facetool.methods.MethodSpec`.
        weights: a weights file or run folder; None = the method's default weights.
        options: the method's options (its ``MethodSpec.options`` instance), given to its network and evaluate.
        split: "test", "train" or "all".
        size: crop side (default: the method's input size).
        limit: evaluate the first N items only (id order).
        backbone: feature backbone for FID/KID (default: :func:`facetool.metrics.features.load_backbone`).
        out_dir: when given, ``metrics.json`` and ``grid.png`` (input | output | target, first 8 items) go there.
        nme: name of a registered detector: adds landmark NME of the outputs (``nme*`` metrics); None = off.
        oracle: score the data's own targets in place of the network's outputs (no weights are read): the value
            every metric gives a perfect method, i.e. the floor of its measuring error.
    """
    import torch

    from .data.datasets import ManifestDataset
    from .methods import resolve_weights
    from .metrics import image as image_metrics
    from .metrics.fid import fid_from_features, kid_from_features

    if split not in SPLITS:
        raise UsageError(f"--split {split!r}: must be one of {', '.join(SPLITS)}")
    if spec.network is None:
        raise UsageError(f"method {spec.name} has no network to evaluate")
    if batch_size < 1 or (limit is not None and limit < 1):
        raise UsageError("--batch-size and --limit must be at least 1")
    nme_spec = nme_detector_spec(nme) if nme is not None else None
    weights_path = None if oracle else resolve_weights(spec, weights)
    size = default_size(spec, weights_path, size)
    metadata = weights_metadata(weights_path)
    if metadata.get("method") and metadata["method"] != spec.name:
        raise FacetoolError(f"{weights_path} holds weights of method {metadata['method']}, not {spec.name}")
    data_dir = Path(data_dir)
    which = None if split == "all" else split
    if spec.measure is not None:
        return _evaluate_own(spec, weights_path, metadata, data_dir, which, split, size, batch_size, limit, seed,
                             device, options, out_dir, nme, oracle)  # fmt: skip
    input_role, target_role = io_roles(spec, train_options_of(spec, metadata), options)

    inputs = ManifestDataset(data_dir, roles=(input_role,), split=which, size=size)
    targets = ManifestDataset(data_dir, roles=(target_role,), split=which, size=size)
    input_items = inputs.items[:limit] if limit else inputs.items
    target_index = {record["id"]: i for i, (record, _) in enumerate(targets.items)}
    target_count = min(len(targets), limit) if limit else len(targets)

    if oracle and any(record["id"] not in target_index for record, _ in input_items):
        raise UsageError(f"--oracle needs a {target_role} for every item: {data_dir} is not paired data")
    torch.manual_seed(seed)
    net = None if oracle else spec.network(options, weights_path).to(device).eval()
    if backbone is None:
        from .metrics.features import load_backbone

        backbone = load_backbone()

    paired: dict[str, list[float]] = {"l1": [], "ssim": [], "psnr": []}
    own: dict[str, list[float]] = {}
    output_features, grid_rows = [], []
    landmarks = None
    if nme_spec is not None:
        from .options import parse_options

        reference = "target" if all(record["id"] in target_index for record, _ in input_items) else "input"
        detector = nme_spec.load(parse_options(nme_spec.options, None, f"detector {nme_spec.name}"), device)
        landmarks = LandmarkNME(nme_spec, detector, reference)
    try:
        for indices in _batches(len(input_items), batch_size):
            batch = ManifestDataset.collate([inputs[i] for i in indices])
            ids = batch["id"]
            has_target = [i for i, item_id in enumerate(ids) if item_id in target_index]
            target_images = {i: targets[target_index[ids[i]]][target_role] for i in has_target}
            if net is None:
                outputs = torch.stack([target_images[i] for i in range(len(ids))])
            else:
                with torch.no_grad():
                    outputs = net(batch[input_role].to(device), **_net_extras(net, batch, device))
                    outputs = outputs.float().clamp(0, 1).cpu()
            output_features.append(backbone(outputs))
            if len(has_target) == len(ids):
                batch[target_role] = torch.stack([target_images[i] for i in range(len(ids))])
            if has_target:
                out_t, tgt_t = outputs[has_target], torch.stack([target_images[i] for i in has_target])
                paired["l1"] += image_metrics.l1(out_t, tgt_t).tolist()
                paired["ssim"] += image_metrics.ssim(out_t, tgt_t).tolist()
                paired["psnr"] += image_metrics.psnr(out_t, tgt_t).tolist()
                if target_role in LINE_ROLES:  # line drawings: how far apart the strokes are
                    paired.setdefault("chamfer", []).extend(image_metrics.chamfer(out_t, tgt_t).tolist())
            if spec.evaluate is not None:
                for name, values in spec.evaluate(outputs, batch, options).items():
                    own.setdefault(name, []).extend(float(v) for v in values)
            for i in range(len(ids)):
                if len(grid_rows) < GRID_ITEMS:
                    grid_rows.append((batch[input_role][i], outputs[i], target_images.get(i)))
            if landmarks is not None:
                for i in range(len(ids)):
                    expected = target_images[i] if landmarks.reference == "target" else batch[input_role][i]
                    landmarks.add(outputs[i], expected)
    finally:
        if landmarks is not None:
            from .pipeline import close_detector

            close_detector(landmarks.detector)

    target_features = [
        backbone(torch.stack([targets[i][target_role] for i in indices]))
        for indices in _batches(target_count, batch_size)
    ]
    fake, real = np.concatenate(output_features), np.concatenate(target_features)
    metrics: dict[str, Any] = {name: _mean(values) for name, values in paired.items()}
    metrics["paired"] = len(paired["l1"])
    if len(fake) >= 2 and len(real) >= 2:
        metrics["fid"] = fid_from_features(fake, real)
        metrics["kid"], metrics["kid_std"] = kid_from_features(fake, real, KID_SUBSETS, KID_SUBSET_SIZE, seed)
    else:
        metrics["fid"] = metrics["kid"] = metrics["kid_std"] = None  # a covariance needs 2 items per side
    metrics |= {name: _mean(values) for name, values in sorted(own.items())}
    if landmarks is not None:
        metrics |= landmarks.metrics()

    result = {
        **_header(spec, weights_path, oracle, data_dir, split),
        "roles": {"input": input_role, "target": target_role},
        "size": size,
        "count": len(input_items),
        "targets": len(real),
        "backbone": backbone.name,
        "metrics": _round(metrics),
        "seed": seed,
    }
    if out_dir is not None:
        write_outputs(Path(out_dir), result, grid_rows)
    return result


def _header(spec: Any, weights_path: Path | None, oracle: bool, data_dir: Path, split: str) -> dict[str, Any]:
    """The metrics document's first keys: what was measured, with which weights, on which data."""
    return {
        "method": spec.name,
        "version": spec.version,
        "weights": {"path": str(weights_path) if weights_path else None, "sha256": weights_digest(weights_path)},
        "oracle": oracle,
        "data": str(data_dir),
        "split": split,
    }


def _evaluate_own(spec, weights_path, metadata, data_dir, which, split, size, batch_size, limit, seed, device,
                  options, out_dir, nme, oracle) -> dict[str, Any]:  # fmt: skip
    """``evaluate_method`` for a method with its own ``measure`` (see the module docstring)."""
    import torch

    if nme is not None:
        raise UsageError(f"method {spec.name} measures its own outputs: --nme does not apply")
    torch.manual_seed(seed)
    net = None if oracle else spec.network(options, weights_path).to(device).eval()
    request = EvalRequest(data_dir, which, size, batch_size, limit, device, options,
                          None if oracle else train_options_of(spec, metadata), seed)  # fmt: skip
    measured: Measured = spec.measure(net, request)
    result = {
        **_header(spec, weights_path, oracle, data_dir, split),
        "roles": measured.roles,
        "size": size,
        "count": measured.count,
        "metrics": _round(measured.metrics),
        "notes": measured.notes,
        "seed": seed,
    }
    if out_dir is not None:
        write_outputs(Path(out_dir), result, measured.grid[:GRID_ITEMS])
    return result


def _tile(image: Any, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) [0, 1] tensor -> (H, W, 3) float; None -> white."""
    if image is None:
        return np.ones((*size, 3), np.float32)
    array = image.detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]


def grid_image(rows: list[tuple[Any, ...]], gap: int = 2) -> np.ndarray:
    """Rows of (C, H, W) tensors of one size — (input, output, target) here; None = a white tile — -> one
    (H', W', 3) float image."""
    size = tuple(rows[0][1].shape[-2:])
    white_col = np.ones((size[0], gap, 3), np.float32)
    lines = []
    for row in rows:
        tiles = [_tile(t, size) for t in row]
        lines.append(np.concatenate([part for tile in tiles for part in (tile, white_col)][:-1], axis=1))
    white_row = np.ones((gap, lines[0].shape[1], 3), np.float32)
    stacked = [part for line in lines for part in (line, white_row)][:-1]
    return np.concatenate(stacked, axis=0)


def write_outputs(out_dir: Path, result: dict[str, Any], grid_rows: list) -> None:
    """``metrics.json`` (atomic) and ``grid.png`` into ``out_dir``."""
    from .data.common import write_bytes_atomic
    from .imageio import write_image

    out_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out_dir / "metrics.json", (json.dumps(result, indent=2) + "\n").encode(), durable=True)
    if grid_rows:
        write_image(out_dir / "grid.png", grid_image(grid_rows))
