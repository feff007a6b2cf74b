"""Mesh synthesis from predicted maps (FaceVision §4), in numpy / scipy.

Coordinates of the result: crop pixels, x to the right, y up (``-row``), z towards the camera (the depth map's
value: larger = nearer), so a viewer looking down -z sees the face as the photo shows it.

Steps (:func:`mesh_from_maps`):

0. The mask: its largest connected part, small holes filled (:func:`tidy_mask`). Outliers: a ``median`` ×
   ``median`` median filter of the depth inside the mask (the GAN's failures on unusual photos are isolated pits and
   peaks; spike removal would otherwise punch holes where they are).
1. Vertices: one per masked pixel (``step`` > 1 keeps every step-th row and column).
2. Delaunay triangulation of their (x, y).
3. Background removal: Delaunay fills the convex hull; triangles whose centroid falls outside the mask go.
4. Spike removal: triangles whose longest 3D edge exceeds ``spike_factor`` × the median longest edge, in a run of
   them that reaches the outline (fins) or at a vertex far from its neighbours (a spike, not a surface); a run inside
   the face spans a cliff (a nose seen edge-on) and stays.
5. Laplacian smoothing of z (uniform umbrella operator, ``smooth_iterations`` steps of rate 0.5): x and y stay on
   the pixel grid, so texture and colour lookups stay exact.
6. Detail filling: the grayscale photo's high-pass (photo minus its Gaussian low-pass) moves each vertex along its
   normal, averaged over its one-ring, by ``detail`` pixels per unit of high-pass.
7. Colours from the photo; optional texture coordinates from a correspondence map (see :func:`uv_from_pncc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: MediaPipe's canonical face mesh (Apache-2.0): its 468 vertices normalised to [0, 1] per axis (the PNCC code) and
#: their texture coordinates (v up), taken from the mediapipe-face-landmarker asset so reconstruct needs no download.
CANONICAL_UV = Path(__file__).parent / "weights" / "canonical_uv.npz"


#: Holes of the face mask up to this share of its area are filled before meshing (see :func:`tidy_mask`).
HOLE_FRACTION = 0.02

#: Holes whose rim lies within this many px of the face's outline are notches, not holes (:func:`inner_holes`).
OUTLINE_PX = 5.0


@dataclass
class FaceMesh:
    """vertices (N, 3) float32, faces (M, 3) int64 (counter-clockwise seen from +z), colors (N, 3) uint8,
    pixels (N, 2) int64 (row, col) each vertex came from, uvs (N, 2) float32 in [0, 1] or None."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    pixels: np.ndarray
    uvs: np.ndarray | None = None


def _neighbours(faces: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges of the triangles as (i, j) arrays, both directions, duplicates removed."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    edges = np.unique(edges, axis=0)
    return edges[:, 0], edges[:, 1]


def masked_median(values: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Median filter of ``values`` (S, S) over ``size`` × ``size`` windows, outside pixels first filled with their
    nearest inside value (so the border is not pulled towards the background); NaN outside the mask."""
    from scipy.ndimage import distance_transform_edt, median_filter

    nearest = distance_transform_edt(~mask, return_distances=False, return_indices=True)
    filled = values[nearest[0], nearest[1]]
    return np.where(mask, median_filter(filled, size=size, mode="nearest"), np.nan)


def tidy_mask(mask: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(S, S) bool -> the largest connected part of ``mask``, its holes under ``HOLE_FRACTION`` of its area filled
    (only where ``valid``, the pixels with a depth).

    The mask is read from the correspondence map, which darkens where the surface turns away: on a turned head a
    few pixels beside the nose fall under the threshold and the mesh got a hole there, and stray pixels in the
    background made crumbs. A large hole (a hand over the face) stays a hole.
    """
    from scipy.ndimage import binary_fill_holes, label

    parts, count = label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(parts.ravel())[1:]
    face = parts == 1 + int(np.argmax(sizes))
    holes, count = label(binary_fill_holes(face) & ~face)
    if count:
        hole_sizes = np.bincount(holes.ravel())[1:]
        small = np.flatnonzero(hole_sizes <= HOLE_FRACTION * face.sum()) + 1
        face |= np.isin(holes, small) & (True if valid is None else valid)
    return face


def inner_holes(mesh: FaceMesh, mask: np.ndarray) -> int:
    """Holes inside the face: rims of the mesh, besides the longest (the outline), whose median vertex lies more
    than ``OUTLINE_PX`` inside the outline of ``mask`` (S, S) bool. Notches cut at the outline are not counted."""
    from scipy.ndimage import binary_fill_holes, distance_transform_edt
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count, faces = len(mesh.vertices), mesh.faces
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, uses = np.unique(edges, axis=0, return_counts=True)
    rim = unique[uses == 1]
    if not len(rim):
        return 0
    graph = coo_matrix((np.ones(len(rim)), (rim[:, 0], rim[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    on_rim = np.unique(rim.ravel())
    rims = np.unique(labels[on_rim])
    outline = rims[np.argmax([np.sum(labels[on_rim] == r) for r in rims])]
    depth_in = distance_transform_edt(binary_fill_holes(mask))[mesh.pixels[:, 0], mesh.pixels[:, 1]]
    return sum(1 for r in rims if r != outline and np.median(depth_in[on_rim[labels[on_rim] == r]]) > OUTLINE_PX)


def _runs_reaching(faces: np.ndarray, chosen: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(M,) bool: chosen triangles whose run — chosen triangles joined by shared vertices — has a vertex in
    ``targets`` (count,) bool."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    picked = np.flatnonzero(chosen)
    out = np.zeros(len(faces), dtype=bool)
    if not len(picked):
        return out
    count = len(targets)
    # One graph over vertices: the corners of each chosen triangle joined to each other.
    a = faces[picked][:, [0, 1, 2]].ravel()
    b = faces[picked][:, [1, 2, 0]].ravel()
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    reaching = np.unique(labels[targets & np.isin(np.arange(count), faces[picked])])
    out[picked] = np.isin(labels[faces[picked, 0]], reaching)
    return out


def lone_pixels(depth: np.ndarray, mask: np.ndarray, limit: float) -> np.ndarray:
    """(S, S) bool: spike pixels — above all or below all of their 8 in-mask neighbours, and within ``limit`` in
    depth of at most one of them.

    A spike stands alone; a pixel at the top or foot of a cliff has neighbours along the cliff on its own side, and
    one on the cliff's face lies between its neighbours.
    """
    near = np.zeros(depth.shape, dtype=np.int64)
    low = np.full(depth.shape, np.inf)
    high = np.full(depth.shape, -np.inf)
    padded = np.pad(np.where(mask, depth, np.nan), 1, constant_values=np.nan)
    h, w = depth.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                other = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                with np.errstate(invalid="ignore"):
                    near += np.abs(other - depth) <= limit  # NaN (outside) compares False
                low, high = np.fmin(low, other), np.fmax(high, other)
    with np.errstate(invalid="ignore"):
        beyond = (depth > high) | (depth < low)
    return mask & (near <= 1) & beyond


def boundary_vertices(faces: np.ndarray, count: int) -> np.ndarray:
    """(count,) bool: vertices on an edge that only one triangle uses (the outline and the rims of holes)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, uses = np.unique(edges, axis=0, return_counts=True)
    out = np.zeros(count, dtype=bool)
    out[unique[uses == 1].ravel()] = True
    return out


def laplacian_smooth_z(vertices: np.ndarray, faces: np.ndarray, iterations: int, rate: float = 0.5) -> np.ndarray:
    """Move each inner vertex's z towards the mean z of its neighbours, ``iterations`` times; x and y untouched.

    Outline vertices stay put: with neighbours on one side only, the umbrella operator would drag the rim of the
    face towards its inside and lift or sink the whole border."""
    out = vertices.astype(np.float64).copy()
    if iterations <= 0 or len(faces) == 0:
        return out.astype(np.float32)
    i, j = _neighbours(faces, len(out))
    degree = np.bincount(i, minlength=len(out)).astype(np.float64)
    has = (degree > 0) & ~boundary_vertices(faces, len(out))
    for _ in range(iterations):
        mean = np.bincount(i, weights=out[j, 2], minlength=len(out))
        out[has, 2] += rate * (mean[has] / degree[has] - out[has, 2])
    return out.astype(np.float32)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (N, 3), unit length (0 for a vertex in no triangle)."""
    v = vertices.astype(np.float64)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)


def high_pass(gray: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Photo minus its Gaussian low-pass, on [0, 1] grayscale (H, W) -> (H, W)."""
    from scipy.ndimage import gaussian_filter

    gray = gray.astype(np.float64)
    return gray - gaussian_filter(gray, sigma, mode="nearest")


def mesh_from_maps(
    depth: np.ndarray,
    mask: np.ndarray,
    photo: np.ndarray,
    *,
    step: int = 1,
    spike_factor: float = 4.0,
    median: int = 5,
    smooth_iterations: int = 5,
    detail: float = 0.5,
    timings: dict[str, float] | None = None,
) -> FaceMesh:
    """Build a face mesh from a depth map (S, S) in crop pixels, a mask (S, S) bool and the photo (S, S, 3) uint8.

    Raises ValueError when the mask holds fewer than 3 pixels or the maps disagree in size. NaN depth counts as
    outside the mask. ``timings``: when given, seconds spent in "mesh" (steps 1-4), "smoothing" and "detail" are
    added to it (for the benchmark).
    """
    from time import perf_counter

    from scipy.spatial import Delaunay

    clock = [perf_counter()]

    def lap(name: str) -> None:
        if timings is not None:
            now = perf_counter()
            timings[name] = timings.get(name, 0.0) + now - clock[0]
            clock[0] = now

    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool) & np.isfinite(depth)
    if depth.shape == mask.shape:
        mask = tidy_mask(mask, np.isfinite(depth))
    if median > 1 and mask.any() and depth.shape == mask.shape:
        depth = masked_median(depth, mask, median)
    if depth.shape != mask.shape or photo.shape[:2] != depth.shape:
        raise ValueError(f"maps differ in size: depth {depth.shape}, mask {mask.shape}, photo {photo.shape[:2]}")
    keep = np.zeros_like(mask)
    keep[::step, ::step] = True
    rows, cols = np.nonzero(mask & keep)
    if len(rows) < 3:
        raise ValueError("the face mask holds fewer than 3 pixels: no mesh")
    vertices = np.stack([cols, -rows, depth[rows, cols]], axis=1).astype(np.float64)

    faces = Delaunay(vertices[:, :2]).simplices.astype(np.int64)
    # Background: centroids outside the mask (Delaunay fills concavities of the outline).
    centroid = vertices[faces, :2].mean(axis=1)
    c_col = np.clip(np.round(centroid[:, 0]).astype(int), 0, mask.shape[1] - 1)
    c_row = np.clip(np.round(-centroid[:, 1]).astype(int), 0, mask.shape[0] - 1)
    faces = faces[mask[c_row, c_col]]
    # Spikes: a longest edge far beyond the typical one, in a run of such triangles that reaches the outline (the
    # depth's roll-off into fins), or at a lone vertex (lone_pixels). A run that stays inside the face is a cliff:
    # the nose's side on a turned head, which a single view sees edge-on. Cut, it left a ragged hole beside the
    # nose; kept, the side is a steep strip of surface.
    if len(faces):
        corners = vertices[faces]
        longest = np.max(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2), axis=1)
        limit = spike_factor * np.median(longest)
        long = longest > limit
        lone = lone_pixels(depth, mask, limit)[rows, cols]
        cut = long & (_runs_reaching(faces, long, boundary_vertices(faces, len(vertices))) | lone[faces].any(axis=1))
        faces = faces[~cut]
    # Counter-clockwise seen from +z: the normals face the camera.
    v0, v1, v2 = (vertices[faces[:, k], :2] for k in range(3))
    cross = (v1[:, 0] - v0[:, 0]) * (v2[:, 1] - v0[:, 1]) - (v1[:, 1] - v0[:, 1]) * (v2[:, 0] - v0[:, 0])
    faces[cross < 0] = faces[cross < 0][:, [0, 2, 1]]

    lap("mesh")
    smoothed = laplacian_smooth_z(vertices, faces, smooth_iterations)
    lap("smoothing")
    if detail and len(faces):
        gray = photo[..., :3].astype(np.float64).mean(axis=2) / 255.0
        offset = high_pass(gray)[rows, cols]
        i, j = _neighbours(faces, len(smoothed))
        degree = np.bincount(i, minlength=len(smoothed))
        ring = (offset + np.bincount(i, weights=offset[j], minlength=len(smoothed))) / (1 + degree)
        smoothed = smoothed + detail * ring[:, None].astype(np.float32) * vertex_normals(smoothed, faces)

    lap("detail")
    used = np.unique(faces)
    remap = np.full(len(smoothed), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return FaceMesh(
        vertices=smoothed[used].astype(np.float32),
        faces=remap[faces],
        colors=photo[rows[used], cols[used], :3].astype(np.uint8),
        pixels=np.stack([rows[used], cols[used]], axis=1).astype(np.int64),
    )


@cache
def canonical_layout() -> tuple[np.ndarray, np.ndarray]:
    """(canonical xyz (468, 3) in [0, 1], their UVs (468, 2)) from :data:`CANONICAL_UV`."""
    with np.load(CANONICAL_UV) as data:
        return data["xyz"].astype(np.float64), data["uv"].astype(np.float64)


def uv_from_pncc(pncc: np.ndarray, rows: np.ndarray, cols: np.ndarray, canonical_xyz: np.ndarray,
                 canonical_uv: np.ndarray, neighbours: int = 4) -> np.ndarray:  # fmt: skip
    """Texture coordinates of pixels from a correspondence map: the canonical mesh's UVs at the pixel's canonical
    position (its PNCC colour), interpolated by inverse distance over the ``neighbours`` nearest canonical vertices
    (a pixel on a vertex takes its UV exactly). pncc (S, S, 3) in [0, 1]; canonical_xyz (V, 3) normalised to
    [0, 1] like the map; canonical_uv (V, 2). Returns (N, 2) float32."""
    from scipy.spatial import cKDTree

    k = min(neighbours, len(canonical_xyz))
    distance, nearest = cKDTree(canonical_xyz).query(pncc[rows, cols].astype(np.float64), k=k)
    distance, nearest = distance.reshape(len(rows), k), nearest.reshape(len(rows), k)
    weights = 1.0 / np.maximum(distance, 1e-9) ** 2
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkc->nc", weights, canonical_uv[nearest]).astype(np.float32)


def smooth_uvs(rows: np.ndarray, cols: np.ndarray, uvs: np.ndarray, degree: int = 4, rounds: int = 3) -> np.ndarray:
    """A smooth, fold-free version of per-pixel UVs: a polynomial of the pixel position (``degree``) fitted by least
    squares, refitted ``rounds`` times without the pixels beyond 3 robust deviations.

    The predicted correspondence is noisy where the face meets the background; read pixel by pixel, those UVs jump
    across the atlas and smear the texture. A low-order map of position keeps what the correspondence says
    overall (where the face's parts are in the canonical layout) and drops the noise. Returns (N, 2) float32 in
    [0, 1]."""
    x = (cols - cols.mean()) / max(cols.std(), 1e-6)
    y = (rows - rows.mean()) / max(rows.std(), 1e-6)
    terms = np.stack([x**i * y**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)
    keep = np.ones(len(uvs), dtype=bool)
    for _ in range(rounds):
        if keep.sum() < terms.shape[1]:
            break
        coefficients, *_ = np.linalg.lstsq(terms[keep], uvs[keep], rcond=None)
        residual = np.linalg.norm(terms @ coefficients - uvs, axis=1)
        deviation = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = residual <= np.median(residual[keep]) + 3 * max(deviation, 1e-6)
    else:
        return np.clip(terms @ coefficients, 0, 1).astype(np.float32)
    return uvs.astype(np.float32)
