"""``facetool evaluate facevision``: depth, correspondence and mesh measures on held-out faces, beside the mean face.

Per item (a ``facetool data maps`` folder: photo, depth, pncc, mask), with the measures of :mod:`.metrics`:

- ``depth_mae`` / ``depth_rmse``: scale-invariant depth errors on the target's face mask, in crop pixels at the
  evaluated size; ``corr_error`` (PNCC units, [0, 1]³) and ``mask_iou``;
- the same four for the **mean face** (``baseline_*``) and their ratios (``*_ratio`` = method / baseline; issue 6's
  goal ≤ 0.5). The mean face is the training split's mean maps when the evaluated folder has one (and the test split
  is measured); otherwise the mean face shipped beside the default weights (``mean_face.npz``, from the shipped
  weights' training data) — ``notes.baseline`` says which;
- mesh statistics of the reconstruction with the default mesh settings: ``vertices``, ``faces``, ``nose_px``
  (distance in the image plane between the mesh's nearest point and the labelled nose tip),
  ``normals_to_camera`` (area fraction of triangles facing +z) and ``holes`` (holes inside the face, not the notches
  at its outline; :func:`.mesh.inner_holes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: A pixel is face where the correspondence map is not the black background.
MASK_THRESHOLD = 0.1
MEAN_FACE = Path(__file__).parent / "weights" / "mean_face.npz"
ROLES = ("photo", "depth", "pncc", "mask")
#: Fewer training items than this make a poor mean face: use the shipped one instead.
MIN_TRAIN_ITEMS = 16


def masks_of(correspondence: np.ndarray) -> np.ndarray:
    """(..., S, S, 3) PNCC in [0, 1] -> (..., S, S) bool: the face pixels."""
    return correspondence.max(axis=-1) > MASK_THRESHOLD


def mean_face_of(data_dir: Path, split: str | None, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(mean depth px (S, S), mean PNCC (S, S, 3), majority mask (S, S), item count) of a data folder's split."""
    from facetool.data.datasets import ManifestDataset

    from .metrics import mean_maps

    data = ManifestDataset(data_dir, roles=("depth", "pncc", "mask"), split=split, size=size)
    depths, correspondences, masks = [], [], []
    for i in range(len(data)):
        item = data[i]
        mask = item["mask"][0].numpy() > 0.5
        depths.append(np.where(mask, item["depth"][0].numpy() * size, np.nan))
        correspondences.append(item["pncc"].permute(1, 2, 0).numpy())
        masks.append(mask)
    return (*mean_maps(depths, correspondences, masks), len(data))


def save_mean_face(data_dir: Path, out: Path, size: int = 128) -> int:
    """Write the train split's mean face to ``out`` (npz, float16 maps); returns the item count."""
    depth, correspondence, mask, count = mean_face_of(data_dir, "train", size)
    np.savez_compressed(out, depth=depth.astype(np.float16), correspondence=correspondence.astype(np.float16),
                        mask=mask, count=count, size=size)  # fmt: skip
    return count


def _shipped_mean_face(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.ndimage import zoom

    from facetool.errors import FacetoolError

    if not MEAN_FACE.is_file():
        raise FacetoolError(f"{MEAN_FACE} is missing from the install (the mean-face baseline)")
    with np.load(MEAN_FACE) as data:
        depth, corr, mask = data["depth"].astype(np.float64), data["correspondence"].astype(np.float64), data["mask"]
        stored = int(data["size"])
    if stored != size:  # nearest keeps NaN outside the face; depth is in pixels, so it scales with the crop
        factor = size / stored
        depth = zoom(depth, factor, order=0) * factor
        corr = zoom(corr, (factor, factor, 1), order=0)
        mask = zoom(mask, factor, order=0)
    return depth, corr, mask


def baseline_face(request: Any) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], str]:
    """The mean face to compare with and where it comes from (see the module docstring)."""
    from facetool.errors import FacetoolError

    if request.split == "test":
        try:
            depth, corr, mask, count = mean_face_of(request.data_dir, "train", request.size)
        except FacetoolError:  # no train split with these roles
            count = 0
        if count >= MIN_TRAIN_ITEMS:
            return (depth, corr, mask), f"mean of the {count} train items of {request.data_dir}"
    return _shipped_mean_face(request.size), f"shipped mean face ({MEAN_FACE.name})"


def _mesh_stats(depth: np.ndarray, mask: np.ndarray, photo: np.ndarray, nose: np.ndarray | None) -> dict[str, float]:
    from .mesh import inner_holes, mesh_from_maps

    try:
        mesh = mesh_from_maps(depth, mask, photo)
    except ValueError:  # no face predicted
        return {"vertices": 0.0, "faces": 0.0}
    corners = mesh.vertices[mesh.faces].astype(np.float64)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    area = np.linalg.norm(normals, axis=1)
    stats = {"vertices": float(len(mesh.vertices)), "faces": float(len(mesh.faces)),
             "normals_to_camera": float(area[normals[:, 2] > 0].sum() / max(area.sum(), 1e-12)),
             "holes": float(inner_holes(mesh, mask))}  # fmt: skip
    if nose is not None:
        tip = mesh.vertices[np.argmax(mesh.vertices[:, 2])]
        stats["nose_px"] = float(np.hypot(tip[0] - nose[0], -tip[1] - nose[1]))
    return stats


def _nose(labels: dict[str, Any], size: int) -> np.ndarray | None:
    """The labelled nose tip (x, y) in pixels of the evaluated size, or None."""
    tip, stored = labels.get("nose_tip"), labels.get("size")
    if tip is None or not stored:
        return None
    return (np.asarray(tip[:2], np.float64) + 0.5) * size / stored - 0.5


def _display_depth(depth: np.ndarray, mask: np.ndarray, low: float, high: float) -> Any:
    """(S, S) depth px -> (1, S, S) tensor for the grid: the face's range stretched to [0.1, 1], black outside."""
    import torch

    shown = np.where(mask, 0.1 + 0.9 * (depth - low) / max(high - low, 1e-6), 0.0)
    return torch.from_numpy(np.clip(shown, 0, 1).astype(np.float32))[None]


def measure(net: Any, request: Any) -> Any:
    """``MethodSpec.measure`` of facevision (see the module docstring); ``net``: :class:`.net.FaceVisionMaps`."""
    import torch

    from facetool.data.datasets import ManifestDataset
    from facetool.evaluate import Measured

    from .metrics import correspondence_error, scale_invariant_depth_errors

    size = request.size
    data = ManifestDataset(request.data_dir, roles=ROLES, split=request.split, size=size)
    count = min(len(data), request.limit) if request.limit else len(data)
    (mean_depth, mean_corr, mean_mask), source = baseline_face(request)
    values: dict[str, list[float]] = {}
    grid = []

    def add(name: str, value: float) -> None:
        values.setdefault(name, []).append(value)

    for start in range(0, count, request.batch_size):
        batch = ManifestDataset.collate([data[i] for i in range(start, min(start + request.batch_size, count))])
        if net is None:  # --oracle: the targets score themselves
            depth_out, corr_out = batch["depth"], batch["pncc"]
        else:
            with torch.inference_mode():
                depth_out, corr_out = net(batch["photo"].to(request.device))
        pred_depth = depth_out[:, 0].float().cpu().numpy() * size
        pred_corr = corr_out.float().permute(0, 2, 3, 1).cpu().numpy()
        photos = (batch["photo"] * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for i in range(len(photos)):
            mask = batch["mask"][i, 0].numpy() > 0.5
            target_depth = np.where(mask, batch["depth"][i, 0].numpy() * size, np.nan)
            target_corr = batch["pncc"][i].permute(1, 2, 0).numpy()
            pred_mask = masks_of(pred_corr[i])
            for prefix, depth, corr, face in (("", pred_depth[i], pred_corr[i], pred_mask),
                                              ("baseline_", mean_depth, mean_corr, mean_mask)):  # fmt: skip
                mae, rmse = scale_invariant_depth_errors(depth, target_depth, mask)
                error, iou = correspondence_error(corr, target_corr, face, mask)
                for name, value in (("depth_mae", mae), ("depth_rmse", rmse), ("corr_error", error), ("mask_iou", iou)):
                    add(prefix + name, value)
            for name, value in _mesh_stats(
                pred_depth[i], pred_mask, photos[i], _nose(batch["labels"][i], size)
            ).items():
                add(name, value)
            if len(grid) < 8:
                low, high = np.nanmin(target_depth), np.nanmax(target_depth)
                shown_corr = torch.from_numpy(pred_corr[i]).permute(2, 0, 1)
                grid.append((batch["photo"][i], _display_depth(pred_depth[i], pred_mask, low, high),
                             _display_depth(target_depth, mask, low, high), shown_corr, batch["pncc"][i]))  # fmt: skip

    metrics: dict[str, Any] = {}
    for name, series in values.items():
        finite = [v for v in series if np.isfinite(v)]
        metrics[name] = float(np.mean(finite)) if finite else None
    for name in ("depth_mae", "depth_rmse", "corr_error"):
        method, base = metrics.get(name), metrics.get("baseline_" + name)
        metrics[name + "_ratio"] = method / base if method is not None and base else None
    notes = {
        "baseline": source,
        "units": f"depth in crop pixels at {size}²; correspondence in PNCC units ([0, 1] per axis)",
        "grid": "photo | predicted depth | target depth | predicted PNCC | target PNCC",
    }
    return Measured(metrics=dict(sorted(metrics.items())), roles={"input": "photo", "target": "depth+pncc+mask"},
                    count=count, grid=grid, notes=notes)  # fmt: skip
