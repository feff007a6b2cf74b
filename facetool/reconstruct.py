"""The ``reconstruct`` task pipeline: align every chosen face, let the method build a mesh from the crop, move the
mesh back into the photo's frame.

A reconstruct runner takes crops (B, 3, S, S) in [0, 1] and returns one ``(mesh, maps)`` per crop: a
:class:`facetool.export.mesh.Mesh` in crop pixels (x = column, y = -row, z towards the camera) and its maps
(name -> (S, S) or (S, S, C) numpy arrays, e.g. depth, correspondence, mask) for ``--maps-dir``.

A mesh that comes with texture coordinates but no texture image gets one baked here from the full-resolution
photo (:func:`bake_texture`): the runner only sees the small crop, the photo has the detail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .export.mesh import Mesh
from .faces import Face
from .imageio import to_tensor


@dataclass
class Reconstruction:
    """One face: its mesh in photo pixels (x right, y = -row, z towards the camera, same units) and its maps."""

    mesh: Mesh
    maps: dict[str, np.ndarray]


def to_photo_frame(mesh: Mesh, matrix: np.ndarray) -> Mesh:
    """Move a crop-frame mesh into the photo frame through the inverse of the crop's similarity ``matrix`` (2, 3)
    (photo pixel -> crop pixel); depth is scaled by the same factor, so the mesh keeps its proportions."""
    a, b = matrix[0, 0], matrix[1, 0]
    scale = float(np.hypot(a, b))
    linear, shift = matrix[:, :2].astype(np.float64), matrix[:, 2].astype(np.float64)
    crop_xy = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 1]], axis=1).astype(np.float64)  # (col, row)
    photo_xy = (crop_xy - shift) @ np.linalg.inv(linear).T
    vertices = np.stack([photo_xy[:, 0], -photo_xy[:, 1], mesh.vertices[:, 2] / scale], axis=1)
    return replace(mesh, vertices=vertices.astype(np.float32))


def texture_size(mesh: Mesh, low: int = 256, high: int = 2048) -> int:
    """Atlas side for a photo-frame mesh: the power of two at or above twice its width in photo pixels, clamped."""
    width = float(np.ptp(mesh.vertices[:, 0])) if len(mesh.vertices) else 0.0
    return int(np.clip(2 ** np.ceil(np.log2(max(2 * width, 1.0))), low, high))


def bake_texture(mesh: Mesh, image: np.ndarray, size: int) -> np.ndarray:
    """Paint a (size, size, 3) uint8 texture atlas for a photo-frame ``mesh`` with ``uvs`` (v up) from ``image``.

    Each texel takes the photo colour at the point of the mesh that maps to it: the vertices' photo positions
    (x, -y) are interpolated linearly over the triangulated UV layout, then the photo is sampled bilinearly.
    Texels no triangle covers copy the nearest covered texel, so filtering at the chart's edge stays clean.
    """
    from scipy.interpolate import LinearNDInterpolator
    from scipy.ndimage import distance_transform_edt, map_coordinates

    centres = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centres, 1 - centres)  # row 0 of the image is v = 1
    photo_xy = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 1]], axis=1).astype(np.float64)
    where = LinearNDInterpolator(mesh.uvs.astype(np.float64), photo_xy)(u, v)  # (size, size, 2), NaN off the chart
    missing = ~np.isfinite(where[..., 0])
    if missing.all():
        return np.zeros((size, size, 3), np.uint8)
    if missing.any():
        nearest = distance_transform_edt(missing, return_distances=False, return_indices=True)
        where = where[nearest[0], nearest[1]]
    rgb = image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    coords = [where[..., 1].ravel(), where[..., 0].ravel()]  # (row, col)
    channels = [map_coordinates(rgb[..., c].astype(np.float32), coords, order=1, mode="nearest") for c in range(3)]
    return np.clip(np.stack(channels, axis=1), 0, 255).round().astype(np.uint8).reshape(size, size, 3)


def reconstruct_photo(
    image: np.ndarray, runner: Any, template_name: str, faces: list[Face] | None, size: int, device: str = "cpu"
) -> list[Reconstruction]:
    """Reconstruct the chosen faces of one photo (``faces`` None: the photo is an aligned crop)."""
    import torch

    from .align import crop_faces, estimate_alignment, get_template

    photo = to_tensor(image, device)
    if faces is None:
        height, width = image.shape[:2]
        matrix = np.array([[size / width, 0.0, 0.0], [0.0, size / height, 0.0]])
        crops = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
        matrices = matrix[None]
    else:
        if not faces:
            return []
        points = torch.as_tensor(np.stack([f.points5 for f in faces]), dtype=torch.float32, device=photo.device)
        tensor_matrices = estimate_alignment(points, get_template(template_name), size)
        crops = crop_faces(photo, tensor_matrices, size)
        matrices = tensor_matrices.cpu().numpy()
    with torch.inference_mode():
        results = runner(crops.clamp(0, 1))
    out = []
    for (mesh, maps), matrix in zip(results, matrices, strict=True):
        mesh = to_photo_frame(mesh, matrix)
        if mesh.uvs is not None and mesh.texture is None:
            mesh = replace(mesh, texture=bake_texture(mesh, image, texture_size(mesh)))
        out.append(Reconstruction(mesh, maps))
    return out
