"""``facetool data maps``: depth, correspondence (PNCC) and mask targets for single-photo 3D face methods.

For each face, MediaPipe's 478 3D landmarks (from ``<photos>/labels/<stem>.json`` when present, else
:class:`~facetool.data.faceinfo.FaceLabeler`) are moved into the aligned crop frame — the similarity that brings
the face's 5 points onto an :mod:`facetool.align` template (default ``portrait``), with ``z`` multiplied by the
same scale — and the first 468 of them are rasterised on MediaPipe's canonical mesh topology
(:mod:`facetool.data.mesh`) with a z-buffer (:mod:`facetool.data.raster`). Nothing is random: ``--seed`` is only
recorded, as in every data command.

Conventions (also written into every manifest record):

- **Depth** is ``z_far - z`` in crop pixels (the same units as the crop's x and y, weak perspective), where
  ``z`` is the landmarks' MediaPipe depth (smaller = nearer the camera) and ``z_far`` the largest ``z`` among the
  face's 468 mesh vertices. So depth is 0 at the mesh's farthest vertex and **larger = nearer the camera: the nose
  tip is the maximum** of the depth map (within a few pixels; the canonical mesh's front-most vertex sits just above
  landmark 1). Exception seen in 2 of 40 test faces: with MediaPipe's pitch near -18° (looking down) its z puts the
  top of the forehead nearer than the nose.
- ``depth/<id>.npy``: float32 (S, S), crop pixels, **NaN outside the mask** (0 is a legitimate depth).
- ``depth/<id>.png``: 16-bit grey, ``value = round(depth / S * 65535)``, i.e. depth as a fraction of the crop side
  (so targets at different ``--size`` agree); inside the mask values are at least 1, 0 means outside.
  Crop pixels = ``value * S / 65535`` (``labels.depth.png_scale``).
- ``pncc/<id>.png``: RGB = the canonical mesh's x, y, z, each normalised to [0, 1] over the mesh's bounding box
  (x towards the image right of a frontal face, y up, z towards the camera), times 255; black outside the mask.
- ``mask/<id>.png``: 255 where the mesh covers the pixel centre, else 0. The canonical mesh closes the eyes and the
  mouth, so the mask is the whole face oval (forehead to chin, no hair, ears or neck) without holes.
- ``photo/<id>.png``: the aligned crop (anti-aliased when the face is shrunk).
- ``landmarks/<id>.npy``: float32 (478, 3) landmarks in the crop frame: x, y crop pixels, z MediaPipe depth in crop
  pixels (smaller = nearer; not the depth-map convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from facetool.data.crops import alignment_matrix, crop_image, similarity_scale

if TYPE_CHECKING:
    from facetool.data.mesh import CanonicalMesh
    from facetool.faces import Face

NOSE_TIP = 1  # MediaPipe landmark id of the nose tip
MESH_POINTS = 468  # the 478-point output's first 468 are the canonical mesh vertices (468..477: irises)
DEPTH_PNG_MAX = 65535
DEPTH_CONVENTION = (
    "depth = z_far - z in crop pixels (z: MediaPipe depth scaled like x, smaller = nearer; z_far: the largest z "
    "of the face's 468 mesh vertices): 0 at the farthest vertex, larger = nearer the camera (nose tip = maximum "
    "for most poses)"
)
PNCC_CONVENTION = (
    "RGB = canonical mesh x, y, z normalised to [0, 1] over its bounding box (x: image right of a frontal face, "
    "y: up, z: towards the camera); black outside the mask"
)
MIN_SIZE, MAX_SIZE = 16, 4096


@dataclass
class FaceMaps:
    """The targets of one face, all in the aligned crop frame.

    Attributes:
        photo: (S, S, 3) uint8 aligned crop.
        depth: (S, S) float32 crop pixels, larger = nearer; NaN outside the mask.
        pncc: (S, S, 3) float32 in [0, 1]; 0 outside the mask.
        mask: (S, S) bool.
        landmarks: (478, 3) float32 landmarks in the crop frame (z scaled, smaller = nearer).
        matrix: (2, 3) float64 photo pixel -> crop pixel.
        scale: the similarity's scale (crop pixels per photo pixel), also applied to z.
        z_far: the reference of the depth (crop pixels, MediaPipe z).
    """

    photo: np.ndarray
    depth: np.ndarray
    pncc: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    scale: float
    z_far: float


# ----------------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------------


def align_landmarks(landmarks3d: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Move (N, 3) photo landmarks into the crop: x, y through ``matrix`` (2, 3), z times its scale.

    A similarity rotates only in the image plane, so z (weak-perspective depth, scaled like x) just scales.
    """
    points = np.asarray(landmarks3d, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    xy = points[:, :2] @ m[:, :2].T + m[:, 2]
    return np.c_[xy, points[:, 2] * similarity_scale(m)].astype(np.float32)


def render_maps(landmarks: np.ndarray, mesh: CanonicalMesh, size: int) -> tuple[np.ndarray, ...]:
    """Rasterise crop-frame landmarks on the canonical topology.

    Args:
        landmarks: (N >= 468, 3) crop-frame landmarks (z smaller = nearer); only the first 468 are used.
        mesh: the canonical mesh (topology and PNCC code).
        size: crop side S.

    Returns:
        depth (S, S) float32 (``z_far - z``, NaN outside), pncc (S, S, 3) float32 (0 outside), mask (S, S) bool,
        z_far (float).
    """
    import torch

    points = np.asarray(landmarks, dtype=np.float32)[:MESH_POINTS]
    if len(points) < MESH_POINTS:
        raise ValueError(f"need at least {MESH_POINTS} landmarks, got {len(points)}")
    from facetool.data.raster import rasterize

    z_far = float(points[:, 2].max())
    attributes = np.c_[z_far - points[:, 2], mesh.normalised_vertices()]  # (468, 4): depth, canonical xyz
    out = rasterize(
        torch.from_numpy(points),
        torch.from_numpy(np.array(mesh.triangles)),  # a copy: the cached mesh is read-only
        torch.from_numpy(attributes.astype(np.float32)),
        (size, size),
    )
    mask = out.mask.numpy()
    maps = out.attributes.numpy()
    depth = np.where(mask, maps[0], np.nan).astype(np.float32)
    pncc = np.where(mask[..., None], maps[1:].transpose(1, 2, 0), 0).clip(0, 1).astype(np.float32)
    return depth, pncc, mask, z_far


def face_maps(image: np.ndarray, face: Face, mesh: CanonicalMesh, size: int, template: str = "portrait") -> FaceMaps:
    """All targets of one face (see the module docstring for the conventions). ``face`` needs landmarks3d."""
    if face.landmarks3d is None:
        raise ValueError("the face has no 3D landmarks")
    matrix = alignment_matrix(face.points5, template, size)
    landmarks = align_landmarks(face.landmarks3d, matrix)
    depth, pncc, mask, z_far = render_maps(landmarks, mesh, size)
    return FaceMaps(
        photo=crop_image(image, matrix, size),
        depth=depth,
        pncc=pncc,
        mask=mask,
        landmarks=landmarks,
        matrix=matrix,
        scale=similarity_scale(matrix),
        z_far=z_far,
    )


def depth_png(depth: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float depth in crop pixels (NaN outside) -> uint16: ``round(depth / size * 65535)``, >= 1 inside the
    mask so that 0 alone means "no face"."""
    inside = np.isfinite(depth)
    value = np.round(np.where(inside, depth, 0.0) / size * DEPTH_PNG_MAX)
    value = np.where(inside, np.clip(value, 1, DEPTH_PNG_MAX), 0)
    return value.astype(np.uint16)


# ----------------------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------------------


@dataclass
class _PhotoFaces:
    photo: Path
    faces: list[Face] | None  # None until labelled (a resumed run knows the ids from the manifest)
    source: str  # "labels" or "facelabeler"
    mesh_faces: list[int]  # indexes (largest first) of the faces that have 3D landmarks
    label_size: tuple[int, int] | None = None  # (height, width) the labels JSON was made for


class MapsJob:
    """Plans the face ids of a photo folder, then makes each face's maps on demand (resumable)."""

    def __init__(self, photos_dir: Path, out: Path, size: int, seed: int, template: str) -> None:
        from facetool.data.common import Manifest, read_manifest
        from facetool.data.labels import list_photos
        from facetool.data.mesh import load_canonical_mesh

        self.photos_dir, self.out, self.size, self.seed, self.template = photos_dir, out, size, seed, template
        self.mesh = load_canonical_mesh()
        self.manifest = Manifest.open(out, "maps")
        self.photos = [path for path, _ in list_photos(photos_dir)]  # the folder, its manifest, or photos/
        # Licence and origin of generated photos, from the photo folder's own manifest when it has one.
        self.origin = {Path(r.get("file", "")).name: r for r in read_manifest(photos_dir)}
        self._labeler = None
        self._image_cache: tuple[Path, np.ndarray] | None = None
        self.plan: dict[str, tuple[_PhotoFaces, int]] = {}
        self._labelled_before = {
            r["labels"]["photo"]: list(r["labels"]["faces_with_mesh"])
            for r in self.manifest.records.values()
            if r.get("labels", {}).get("landmarks_source") == "facelabeler" and "faces_with_mesh" in r["labels"]
        }
        self.no_mesh = 0
        for record in self.manifest.records.values():  # one folder, one geometry: never mix sizes or templates
            made_with = record.get("labels", {})
            if (made_with.get("size"), made_with.get("template")) != (size, template):
                from facetool.errors import UsageError

                raise UsageError(
                    f"--out {out}: holds maps made with --size {made_with.get('size')} --template "
                    f"{made_with.get('template')}; use another folder for --size {size} --template {template}"
                )

    def close(self) -> None:
        if self._labeler is not None:
            self._labeler.close()

    # --- planning ----------------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        ids = []
        for photo in self.photos:
            entry = self._plan_photo(photo)
            for k in entry.mesh_faces:
                item_id = f"{photo.stem}_{k}"
                if item_id in self.plan:
                    from facetool.errors import UsageError

                    raise UsageError(f"{photo}: two photos in {self.photos_dir} share the name {photo.stem!r}")
                self.plan[item_id] = (entry, k)
                ids.append(item_id)
        return ids

    def _plan_photo(self, photo: Path) -> _PhotoFaces:
        label_path = self.photos_dir / "labels" / f"{photo.stem}.json"
        data = self._read_labels(label_path, photo)
        if data is not None:
            entry = self._entry(photo, data[0], "labels")
            entry.label_size = data[1]
            return entry
        # Resuming: the manifest already says which faces of this photo have a mesh; make() labels the photo again
        # only if one of them is missing.
        known = self._labelled_before.get(photo.name)
        if known is not None:
            return _PhotoFaces(photo, None, "facelabeler", known)
        return self._entry(photo, self._label(photo), "facelabeler")

    def _entry(self, photo: Path, faces: list[Face], source: str) -> _PhotoFaces:
        with_mesh = [k for k, f in enumerate(faces) if f.landmarks3d is not None and len(f.landmarks3d) >= MESH_POINTS]
        self.no_mesh += len(faces) - len(with_mesh)
        return _PhotoFaces(photo, faces, source, with_mesh)

    @staticmethod
    def _read_labels(label_path: Path, photo: Path) -> tuple[list[Face], tuple[int, int] | None] | None:
        from facetool.data.faceinfo import faces_from_json, read_label_file
        from facetool.errors import FacetoolError

        try:
            data = read_label_file(label_path, photo)
            if data is None:
                return None
            size = (int(data["height"]), int(data["width"])) if "height" in data and "width" in data else None
            return faces_from_json(data), size
        except (ValueError, KeyError, TypeError) as err:
            raise FacetoolError(f"{label_path}: unreadable labels ({err}); re-run facetool data labels") from None

    def _label(self, photo: Path) -> list[Face]:
        if self._labeler is None:
            from facetool.data.faceinfo import FaceLabeler

            self._labeler = FaceLabeler()
        return self._labeler.label(self._image(photo))

    def _image(self, photo: Path) -> np.ndarray:
        from facetool.imageio import read_image

        if self._image_cache is None or self._image_cache[0] != photo:
            self._image_cache = (photo, read_image(photo))
        return self._image_cache[1]

    # --- making ------------------------------------------------------------------------------------------

    def make(self, index: int, item_id: str) -> dict[str, Any]:
        from facetool.data.common import file_record, item_seed, save_npy, save_png

        entry, k = self.plan[item_id]
        if entry.faces is None:
            entry.faces = self._label(entry.photo)
        faces = entry.faces
        image = self._image(entry.photo)
        if k >= len(faces) or faces[k].landmarks3d is None:
            from facetool.errors import FacetoolError

            raise FacetoolError(f"{entry.photo}: face {k} is no longer found; delete {self.out} and run again")
        face = faces[k]
        self._check_size(entry, image)
        maps = face_maps(image, face, self.mesh, self.size, self.template)

        root, files = self.out, {}

        def put(role: str, rel: str, digest: str) -> None:
            files[role] = file_record(root, root / rel, digest)

        rel = f"photo/{item_id}.png"
        put("photo", rel, save_png(root / rel, maps.photo))
        rel = f"depth/{item_id}.png"
        put("depth", rel, save_png(root / rel, depth_png(maps.depth, self.size)))
        rel = f"depth/{item_id}.npy"
        put("depth_npy", rel, save_npy(root / rel, maps.depth))
        rel = f"pncc/{item_id}.png"
        put("pncc", rel, save_png(root / rel, np.round(maps.pncc * 255).astype(np.uint8)))
        rel = f"mask/{item_id}.png"
        put("mask", rel, save_png(root / rel, maps.mask.astype(np.uint8) * 255))
        rel = f"landmarks/{item_id}.npy"
        put("landmarks", rel, save_npy(root / rel, maps.landmarks))

        origin = self.origin.get(entry.photo.name, {})
        inside = maps.depth[maps.mask]
        mesh_z = maps.landmarks[:MESH_POINTS, 2]
        nose = maps.landmarks[NOSE_TIP]
        return {
            "id": item_id,
            "file": files["photo"]["path"],
            "sha256": files["photo"]["sha256"],
            "seed": item_seed(self.seed, index),
            "source": origin.get("source", str(entry.photo)),
            "licence": origin.get("licence", "as the source photo"),
            "files": files,
            "labels": {
                "photo": entry.photo.name,
                "face_index": k,
                "faces_with_mesh": entry.mesh_faces,
                "landmarks_source": entry.source,
                "size": self.size,
                "template": self.template,
                "matrix": [[round(float(v), 6) for v in row] for row in maps.matrix],
                "scale": round(maps.scale, 6),
                "depth": {
                    "convention": DEPTH_CONVENTION,
                    "units": "crop pixels",
                    "png_scale": self.size / DEPTH_PNG_MAX,
                    "png": "uint16 round(depth / size * 65535), >= 1 inside the mask, 0 outside",
                    "npy_outside_mask": "NaN",
                    "z_far": round(maps.z_far, 4),
                    "range": [round(float(inside.min()), 4), round(float(inside.max()), 4)] if inside.size else None,
                },
                "z_range": [round(float(mesh_z.min()), 4), round(float(mesh_z.max()), 4)],
                "nose_tip": [round(float(nose[0]), 3), round(float(nose[1]), 3), round(maps.z_far - float(nose[2]), 4)],
                "mask_fraction": round(float(maps.mask.mean()), 5),
                "pncc": PNCC_CONVENTION,
                "pose": face.pose,
            },
        }

    def _check_size(self, entry: _PhotoFaces, image: np.ndarray) -> None:
        if entry.label_size is not None and entry.label_size != image.shape[:2]:
            from facetool.errors import FacetoolError

            (h, w), (ih, iw) = entry.label_size, image.shape[:2]
            raise FacetoolError(
                f"{self.photos_dir / 'labels' / (entry.photo.stem + '.json')}: labels are for a {w}x{h} image, the "
                f"photo is {iw}x{ih}; re-run facetool data labels"
            )


def make_maps(photos_dir: Path, out: Path, size: int = 128, seed: int = 0, template: str = "portrait") -> dict:
    """Run the job; returns {"made", "skipped", "faces", "no_mesh"}."""
    from facetool.align import get_template
    from facetool.data.common import run_items
    from facetool.errors import UsageError

    photos_dir, out = Path(photos_dir), Path(out)
    if not photos_dir.is_dir():
        raise UsageError(f"{photos_dir}: not a folder of photos")
    if out.resolve() == photos_dir.resolve():
        raise UsageError(f"--out {out}: choose a folder other than the photo folder")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"--size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    get_template(template)
    from facetool.data.common import torch_threads

    job = MapsJob(photos_dir, out, size, seed, template)
    try:
        with torch_threads(1):
            ids = job.ids()
            made, skipped = run_items(job.manifest, ids, job.make, "maps", source_of=lambda i: job.plan[i][0].photo)
    finally:
        job.close()
    return {"made": made, "skipped": skipped, "faces": len(ids), "no_mesh": job.no_mesh}


HELP = """Depth, correspondence (PNCC) and mask maps of every face, in the aligned crop frame, from MediaPipe's 3D
landmarks on the canonical face mesh. Uses PHOTOS_DIR/labels/<stem>.json when present (facetool data labels),
else labels the photos itself. Writes photo/, depth/ (16-bit PNG + float .npy), pncc/, mask/, landmarks/ and
manifest.jsonl. Depth = z_far - z in crop pixels: larger = nearer (the nose tip is normally the maximum); the PNG
stores depth / size * 65535. Labelling here is not resumable per photo: for large folders run facetool data
labels first.

[b]Examples[/b]

  facetool data maps data/photos --out data/maps

  facetool data maps data/photos --out data/maps256 --size 256 --template ffhq
"""


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("maps", help=HELP)
    def maps_command(
        photos_dir: Path = typer.Argument(..., help="Folder of photos (with labels/ from facetool data labels)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        size: int = typer.Option(128, "--size", help="Crop side in pixels."),
        seed: int = typer.Option(0, "--seed", min=0, help="Recorded per item (the maps themselves are not random)."),
        template: str = typer.Option("portrait", "--template", help="Alignment template of facetool.align."),
    ) -> None:
        result = make_maps(photos_dir, out, size=size, seed=seed, template=template)
        extra = f", {result['no_mesh']} face(s) without a 3D mesh left out" if result["no_mesh"] else ""
        typer.echo(f"maps: made {result['made']}, skipped {result['skipped']}{extra} -> {out}")
        if not result["made"] and not result["skipped"] and result["no_mesh"]:
            from facetool.errors import FacetoolError

            raise FacetoolError(
                f"{photos_dir}: no face has a 3D mesh (labelled with --no-mesh?); run facetool data labels "
                f"{photos_dir} without --no-mesh, then this again"
            )
