"""MediaPipe's canonical face mesh (468 vertices, 898 triangles, UVs), read from the face-landmarker task file.

The ``.task`` file of the ``mediapipe-face-landmarker`` asset is a zip; its member
``geometry_pipeline_metadata_landmarks.binarypb`` is a serialised ``GeometryPipelineMetadata`` protobuf::

    GeometryPipelineMetadata { canonical_mesh = 1 (Mesh3d); procrustes_landmark_basis = 2 (repeated
                               {landmark_id = 1 uint32, weight = 2 float}); input_source = 3 (enum) }
    Mesh3d { vertex_type = 1; primitive_type = 2; vertex_buffer = 3 (repeated float: x, y, z, u, v per vertex);
             index_buffer = 4 (repeated uint32: three per triangle) }

No generated protobuf classes ship with facetool, so a small wire-format reader below decodes it. Vertex ids are
the face landmark ids: the first 468 of the landmarker's 478 points are the mesh vertices (468..477 are iris
points that no triangle uses). Canonical coordinates are centimetres, x towards the image right of a frontal face,
y up, z towards the camera (the nose tip has the largest z).
"""

from __future__ import annotations

import functools
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from facetool.errors import FacetoolError

ASSET = "mediapipe-face-landmarker"
MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
NUM_VERTICES = 468
NUM_TRIANGLES = 898

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class CanonicalMesh:
    """The canonical face mesh.

    Attributes:
        vertices: (468, 3) float32 x, y, z in centimetres (y up, z towards the camera).
        uvs: (468, 2) float32 texture coordinates in [0, 1].
        triangles: (898, 3) int64 vertex ids.
        basis: (K, 2) float64 Procrustes landmark basis (landmark id, weight); MediaPipe's choice of stable points.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    triangles: np.ndarray
    basis: np.ndarray

    def normalised_vertices(self) -> np.ndarray:
        """(468, 3) float32: each axis scaled to [0, 1] over the mesh's bounding box (the PNCC code)."""
        lo, hi = self.vertices.min(0), self.vertices.max(0)
        return ((self.vertices - lo) / (hi - lo)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Protobuf wire format
# ----------------------------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Top-level fields of one protobuf message: ``(field number, wire type, value)``.

    A varint comes back as an int; fixed32 / fixed64 and length-delimited values as their raw bytes (decode them
    with :func:`struct` or recurse, as the schema says). Groups (wire types 3, 4) are not supported.
    """
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire in (_FIXED32, _FIXED64):
            width = 4 if wire == _FIXED32 else 8
            value, pos = data[pos : pos + width], pos + width
        elif wire == _LENGTH:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire} (field {number})")
        if pos > len(data):
            raise ValueError(f"field {number} runs past the end of the message")
        yield number, wire, value


def _varints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _read_varint(data, pos)
        out.append(value)
    return out


def _floats(values: list[tuple[int, int | bytes]]) -> list[float]:
    """A repeated float field: any mix of packed runs (length-delimited) and single fixed32 values."""
    out: list[float] = []
    for wire, value in values:
        if wire == _FIXED32:
            out.append(struct.unpack("<f", value)[0])
        elif wire == _LENGTH:
            out.extend(struct.unpack(f"<{len(value) // 4}f", value))
        else:
            raise ValueError(f"float field with wire type {wire}")
    return out


def _uints(values: list[tuple[int, int | bytes]]) -> list[int]:
    """A repeated uint32 field: packed runs of varints and/or single varints."""
    out: list[int] = []
    for wire, value in values:
        if wire == _VARINT:
            out.append(value)
        elif wire == _LENGTH:
            out.extend(_varints(value))
        else:
            raise ValueError(f"uint32 field with wire type {wire}")
    return out


def _group(data: bytes) -> dict[int, list[tuple[int, int | bytes]]]:
    fields: dict[int, list[tuple[int, int | bytes]]] = {}
    for number, wire, value in iter_fields(data):
        fields.setdefault(number, []).append((wire, value))
    return fields


# ----------------------------------------------------------------------------------------------------
# GeometryPipelineMetadata
# ----------------------------------------------------------------------------------------------------


def parse_geometry_metadata(data: bytes) -> CanonicalMesh:
    """Decode a serialised ``GeometryPipelineMetadata`` into a :class:`CanonicalMesh`.

    Raises ValueError when the bytes are not such a message (wrong vertex type, sizes that do not divide, index out
    of range).
    """
    top = _group(data)
    if 1 not in top:
        raise ValueError("no canonical_mesh (field 1)")
    mesh = _group(top[1][-1][1])  # a repeated singular message field: the last one wins
    vertex_type = mesh.get(1, [(0, 0)])[-1][1]
    primitive_type = mesh.get(2, [(0, 0)])[-1][1]
    if vertex_type != 0 or primitive_type != 0:
        raise ValueError(f"unsupported mesh: vertex_type {vertex_type}, primitive_type {primitive_type}")
    vertex_buffer = np.asarray(_floats(mesh.get(3, [])), dtype=np.float32)
    index_buffer = np.asarray(_uints(mesh.get(4, [])), dtype=np.int64)
    if vertex_buffer.size == 0 or vertex_buffer.size % 5 or index_buffer.size % 3:
        raise ValueError(f"bad buffer sizes: {vertex_buffer.size} floats, {index_buffer.size} indices")
    vertices = vertex_buffer.reshape(-1, 5)
    triangles = index_buffer.reshape(-1, 3)
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError("triangle index out of range")
    basis = []
    for _, value in top.get(2, []):
        ref = _group(value)
        landmark = ref.get(1, [(0, 0)])[-1][1]
        weight = _floats(ref.get(2, [(_FIXED32, b"\0\0\0\0")]))[-1]
        basis.append((landmark, weight))
    return CanonicalMesh(
        vertices=np.ascontiguousarray(vertices[:, :3]),
        uvs=np.ascontiguousarray(vertices[:, 3:]),
        triangles=triangles,
        basis=np.asarray(basis, dtype=np.float64).reshape(-1, 2),
    )


@functools.lru_cache(maxsize=1)
def load_canonical_mesh() -> CanonicalMesh:
    """The canonical mesh of the ``mediapipe-face-landmarker`` asset (parsed once per process).

    Raises AssetError when the asset is not fetched, FacetoolError when the file does not hold the expected mesh.
    """
    from facetool.assets import asset_path

    path = asset_path(ASSET)
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(MEMBER)
        mesh = parse_geometry_metadata(data)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, struct.error) as err:
        raise FacetoolError(f"{path}: cannot read the canonical face mesh ({err})") from None
    if mesh.vertices.shape != (NUM_VERTICES, 3) or mesh.triangles.shape != (NUM_TRIANGLES, 3):
        raise FacetoolError(
            f"{path}: canonical mesh has {len(mesh.vertices)} vertices and {len(mesh.triangles)} triangles, "
            f"expected {NUM_VERTICES} and {NUM_TRIANGLES}"
        )
    for array in (mesh.vertices, mesh.uvs, mesh.triangles):
        array.setflags(write=False)  # shared by every caller through the cache
    return mesh
