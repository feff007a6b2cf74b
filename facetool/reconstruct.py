"""The ``reconstruct`` task pipeline: align every chosen face, let the method build a mesh from the crop, move the
mesh back into the photo's frame.

A reconstruct runner takes crops (B, 3, S, S) in [0, 1] and returns one ``(mesh, maps)`` per crop: a
:class:`facetool.export.mesh.Mesh` in crop pixels (x = column, y = -row, z towards the camera) and its maps
(name -> (S, S) or (S, S, C) numpy arrays, e.g. depth, correspondence, mask) for ``--maps-dir``.
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
    return [Reconstruction(to_photo_frame(mesh, m), maps) for (mesh, maps), m in zip(results, matrices, strict=True)]
