"""Canonical mesh parsing, the z-buffer rasteriser, and ``facetool data maps`` on the astronaut photo."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch

from facetool.data import raster
from facetool.data.mesh import iter_fields, parse_geometry_metadata
from facetool.data.raster import rasterize

from conftest import SAMPLE, require_assets

# ----------------------------------------------------------------------------------------------------
# Canonical mesh
# ----------------------------------------------------------------------------------------------------


def test_canonical_mesh_from_task_file():
    require_assets("mediapipe-face-landmarker")
    from facetool.data.mesh import load_canonical_mesh

    mesh = load_canonical_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.vertices.dtype == np.float32
    assert mesh.uvs.shape == (468, 2)
    assert mesh.triangles.shape == (898, 3) and mesh.triangles.dtype == np.int64
    assert mesh.triangles.min() == 0 and mesh.triangles.max() == 467
    assert len(np.unique(mesh.triangles)) == 468  # every vertex belongs to some triangle
    assert (mesh.uvs >= 0).all() and (mesh.uvs <= 1).all()
    assert len(mesh.basis) > 0 and mesh.basis[:, 0].max() < 468 and (mesh.basis[:, 1] > 0).all()
    # Centimetres, face towards +z: the nose tip is the front-most point; the mesh is left-right symmetric.
    assert mesh.vertices[:, 2].argmax() in (1, 4)
    np.testing.assert_allclose(mesh.vertices[33] * [-1, 1, 1], mesh.vertices[263], atol=1e-4)  # eye corners
    assert 10 < np.ptp(mesh.vertices[:, 0]) < 20
    code = mesh.normalised_vertices()
    assert code.min() == 0 and code.max() == 1


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, wire, payload):
    if wire == 2:
        payload = _varint(len(payload)) + payload
    return _varint(number << 3 | wire) + payload


def _metadata(vertices, triangles, packed):
    floats = [v for row in vertices for v in row]
    ints = [i for row in triangles for i in row]
    mesh = _field(1, 0, _varint(0)) + _field(2, 0, _varint(0))
    if packed:
        mesh += _field(3, 2, struct.pack(f"<{len(floats)}f", *floats))
        mesh += _field(4, 2, b"".join(_varint(i) for i in ints))
    else:
        mesh += b"".join(_field(3, 5, struct.pack("<f", f)) for f in floats)
        mesh += b"".join(_field(4, 0, _varint(i)) for i in ints)
    basis = _field(2, 2, _field(1, 0, _varint(2)) + _field(2, 5, struct.pack("<f", 0.5)))
    return _field(3, 0, _varint(1)) + _field(1, 2, mesh) + basis


@pytest.mark.parametrize("packed", [False, True])
def test_wire_format_reader_packed_and_unpacked(packed):
    vertices = [[0.0, 1.0, 2.0, 0.25, 0.75], [3.0, -4.0, 5.5, 1.0, 0.0], [300.0, 7.0, -8.0, 0.5, 0.5]]
    data = _metadata(vertices, [[0, 1, 2], [2, 1, 0]], packed)
    mesh = parse_geometry_metadata(data)
    np.testing.assert_array_equal(mesh.vertices, np.float32(vertices)[:, :3])
    np.testing.assert_array_equal(mesh.uvs, np.float32(vertices)[:, 3:])
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2], [2, 1, 0]])
    np.testing.assert_array_equal(mesh.basis, [[2, 0.5]])
    assert [number for number, _, _ in iter_fields(data)] == [3, 1, 2]
    with pytest.raises(ValueError):
        parse_geometry_metadata(_metadata(vertices, [[0, 1, 3]], packed))  # index out of range
    with pytest.raises(ValueError):
        parse_geometry_metadata(data[:-3])  # truncated


# ----------------------------------------------------------------------------------------------------
# Rasteriser
# ----------------------------------------------------------------------------------------------------


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_nearer_triangle_wins_whatever_the_order():
    # Two overlapping triangles: A at z = 5 (far), B at z = 1 (near).
    vertices = _tensor([[2, 2, 5], [40, 2, 5], [2, 40, 5], [10, 10, 1], [45, 10, 1], [10, 45, 1]])
    attrs = _tensor([[1.0], [1.0], [1.0], [2.0], [2.0], [2.0]])
    for tris, near_id in (([[0, 1, 2], [3, 4, 5]], 1), ([[3, 4, 5], [0, 1, 2]], 0)):
        out = rasterize(vertices, torch.tensor(tris), attrs, (48, 48))
        assert out.triangle_id[15, 15] == near_id and abs(out.attributes[0, 15, 15] - 2) < 1e-5  # in both: near
        assert out.triangle_id[4, 4] == 1 - near_id and abs(out.attributes[0, 4, 4] - 1) < 1e-5  # only in A
        assert out.triangle_id[40, 12] == near_id  # only in B
        assert out.triangle_id[47, 47] == -1 and not out.mask[47, 47] and out.attributes[0, 47, 47] == 0
    # Equal depth: the lower triangle id wins, independent of order.
    same = _tensor([[2, 2, 3], [40, 2, 3], [2, 40, 3]])
    out = rasterize(same, torch.tensor([[0, 1, 2], [0, 2, 1]]), None, (48, 48))
    assert (out.triangle_id[out.mask] == 0).all() and out.attributes.shape == (0, 48, 48)


def test_barycentric_interpolation_exact_at_vertices_and_for_affine_attributes():
    vertices = _tensor([[3, 4, 0.5], [60, 10, 2.0], [20, 55, -1.0]])  # vertices at pixel centres
    x, y, z = vertices.T
    attrs = torch.stack([z, 2 * x - 0.5 * y + 7, torch.tensor([1.0, 0.0, 0.0])], 1)
    out = rasterize(vertices, torch.tensor([[0, 1, 2]]), attrs, (64, 64))
    for k, (vx, vy) in enumerate([(3, 4), (60, 10), (20, 55)]):
        assert out.mask[vy, vx]
        torch.testing.assert_close(out.attributes[:, vy, vx], attrs[k], atol=1e-5, rtol=0)
        assert abs(float(out.barycentric[vy, vx, k]) - 1) < 1e-5
    rows, cols = out.mask.nonzero(as_tuple=True)
    torch.testing.assert_close(out.attributes[1, rows, cols], 2 * cols - 0.5 * rows + 7.0, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.barycentric[out.mask].sum(-1), torch.ones(len(rows)), atol=1e-5, rtol=0)
    assert (out.barycentric[out.mask] >= -1e-5).all()


def test_mask_area_matches_the_analytic_area():
    corners = [[10.3, 5.7, 0], [190.2, 40.1, 0], [60.5, 170.9, 0]]
    out = rasterize(_tensor(corners), torch.tensor([[0, 1, 2]]), None, (200, 200))
    (ax, ay, _), (bx, by, _), (cx, cy, _) = corners
    area = abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) / 2
    assert abs(int(out.mask.sum()) - area) < 0.01 * area
    # Clipped by the image: the covered area is the part inside, here the whole image.
    big = rasterize(
        _tensor([[-100, -100, 0], [400, -100, 0], [-100, 400, 0]]), torch.tensor([[0, 1, 2]]), None, (32, 32)
    )
    assert big.mask.all()
    # Degenerate and off-image triangles draw nothing.
    flat = _tensor([[0, 0, 0], [10, 10, 0], [20, 20, 0], [100, 100, 0], [120, 100, 0], [100, 120, 0]])
    assert not rasterize(flat, torch.tensor([[0, 1, 2], [3, 4, 5]]), None, (32, 32)).mask.any()


def test_shared_edges_leave_no_cracks_and_chunking_changes_nothing(monkeypatch):
    # A 20x20 grid of quads (two triangles each) with jittered interior vertices and random depths.
    generator = torch.Generator().manual_seed(0)
    n = 21
    gy, gx = torch.meshgrid(torch.linspace(-0.5, 63.5, n), torch.linspace(-0.5, 63.5, n), indexing="ij")
    jitter = (torch.rand(n, n, 2, generator=generator) - 0.5) * 1.5
    jitter[[0, -1]] = 0
    jitter[:, [0, -1]] = 0
    xy = torch.stack([gx, gy], -1) + jitter
    vertices = torch.cat([xy.reshape(-1, 2), torch.rand(n * n, 1, generator=generator)], 1)
    ids = torch.arange(n * n).reshape(n, n)
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    tris = torch.cat([torch.stack([a, b, d], -1).reshape(-1, 3), torch.stack([a, d, c], -1).reshape(-1, 3)])
    attrs = torch.rand(n * n, 2, generator=generator)
    full = rasterize(vertices, tris, attrs, (64, 64))
    assert full.mask.all()  # the grid tiles the image exactly: any crack would show as a hole
    monkeypatch.setattr(raster, "_CANDIDATE_CHUNK", 64)  # many small batches
    chunked = rasterize(vertices, tris, attrs, (64, 64))
    assert torch.equal(chunked.triangle_id, full.triangle_id) and torch.equal(chunked.attributes, full.attributes)
    # Overlapping layers: a second copy of the grid, nearer everywhere, hides the first completely.
    both = rasterize(
        torch.cat([vertices, vertices - torch.tensor([0.0, 0.0, 10.0])]),
        torch.cat([tris, tris + n * n]),
        None,
        (64, 64),
    )
    assert (both.triangle_id >= len(tris)).all()


# ----------------------------------------------------------------------------------------------------
# facetool data maps on the astronaut
# ----------------------------------------------------------------------------------------------------

LABEL_ASSETS = ("mediapipe-face-landmarker", "dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")


@pytest.fixture(scope="module")
def astronaut_faces():
    """The astronaut's faces from the real FaceLabeler (loaded once for the module)."""
    require_assets(*LABEL_ASSETS)
    from facetool.data.faceinfo import FaceLabeler
    from facetool.imageio import read_image

    image = read_image(SAMPLE)
    with FaceLabeler() as labeler:
        faces = labeler.label(image)
    assert faces and faces[0].landmarks3d is not None and faces[0].landmarks3d.shape == (478, 3)
    return image, faces


@pytest.fixture()
def labelled_photos(tmp_path, astronaut_faces):
    """A photo folder with the astronaut and its labels JSON (as facetool data labels writes it)."""
    from facetool.data.faceinfo import faces_to_json

    image, faces = astronaut_faces
    photos = tmp_path / "photos"
    (photos / "labels").mkdir(parents=True)
    shutil.copy(SAMPLE, photos / "astronaut.png")
    data = faces_to_json(faces, image.shape[1], image.shape[0])
    (photos / "labels" / "astronaut.json").write_text(json.dumps(data))
    return photos


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_maps_of_the_astronaut(labelled_photos, tmp_path):
    from PIL import Image

    from facetool.data.common import read_manifest
    from facetool.data.maps import make_maps

    size = 128
    out = tmp_path / "maps"
    result = make_maps(labelled_photos, out, size=size, seed=3)
    assert result["made"] == 1 and result["skipped"] == 0
    (record,) = read_manifest(out)
    item = record["id"]
    assert item == "astronaut_0" and record["file"] == f"photo/{item}.png"
    labels = record["labels"]
    assert labels["landmarks_source"] == "labels" and labels["depth"]["units"] == "crop pixels"
    assert set(labels["pose"]) == {"yaw", "pitch", "roll"} and len(labels["z_range"]) == 2

    photo = np.asarray(Image.open(out / "photo" / f"{item}.png"))
    depth16 = np.asarray(Image.open(out / "depth" / f"{item}.png"))
    depth = np.load(out / "depth" / f"{item}.npy")
    pncc = np.asarray(Image.open(out / "pncc" / f"{item}.png"))
    mask = np.asarray(Image.open(out / "mask" / f"{item}.png")) > 0
    landmarks = np.load(out / "landmarks" / f"{item}.npy")
    assert photo.shape == (size, size, 3) and pncc.shape == (size, size, 3)
    assert depth16.dtype == np.uint16 and depth.dtype == np.float32 and depth.shape == (size, size)
    assert landmarks.shape == (478, 3)

    # One mask, four ways: mask PNG, finite npy, non-zero depth PNG, non-black PNCC (inside the face).
    assert np.array_equal(mask, np.isfinite(depth)) and np.array_equal(mask, depth16 > 0)
    assert not pncc[~mask].any()
    np.testing.assert_allclose(depth16[mask].astype(np.float64) * size / 65535, depth[mask], atol=size / 65535)
    assert labels["depth"]["range"] == pytest.approx([depth[mask].min(), depth[mask].max()], abs=1e-3)

    # The mask covers the face: a solid blob of plausible size holding the eyes, nose tip and mouth corners.
    assert 0.1 < mask.mean() < 0.6
    for index in (1, 33, 263, 61, 291, 175):  # nose tip, eye corners, mouth corners, chin
        x, y = np.round(landmarks[index, :2]).astype(int)
        assert mask[y, x], index
    # The nose tip (landmark 1) is the nearest point: the depth maximum lies within a few pixels of it.
    nose_x, nose_y = landmarks[1, :2]
    peak_y, peak_x = np.unravel_index(np.nanargmax(depth), depth.shape)
    assert np.hypot(peak_x - nose_x, peak_y - nose_y) <= 4
    assert depth[int(round(nose_y)), int(round(nose_x))] > 0.95 * np.nanmax(depth)
    assert np.nanmin(depth) >= 0

    # PNCC varies smoothly inside the face: neighbouring face pixels differ by a few levels almost everywhere
    # (larger steps only where the surface turns away or hides itself: nose side, lip seam, silhouette), and the
    # code spans most of its range (it is not constant).
    code = pncc.astype(np.int32)
    both = mask[:, 1:] & mask[:, :-1]
    step = np.abs(code[:, 1:] - code[:, :-1]).max(-1)[both]
    assert np.median(step) <= 6 and np.percentile(step, 90) <= 12 and np.mean(step > 32) < 0.02
    assert all(np.ptp(code[mask][:, c]) > 150 for c in range(3))


def test_maps_are_deterministic_and_resume(labelled_photos, tmp_path, monkeypatch, astronaut_faces):
    from facetool.data import faceinfo
    from facetool.data.maps import make_maps

    first, second = tmp_path / "a", tmp_path / "b"
    make_maps(labelled_photos, first, size=96, seed=5)
    make_maps(labelled_photos, second, size=96, seed=5)
    files = _files(first)
    assert files == _files(second) and len(files) == 8  # 6 maps + manifest + made_by.json

    # Resume: an untouched folder is skipped; a deleted and a corrupted file are remade, byte-identical.
    assert make_maps(labelled_photos, first, size=96, seed=5)["skipped"] == 1
    (first / "pncc" / "astronaut_0.png").unlink()
    (first / "depth" / "astronaut_0.npy").write_bytes(b"broken")
    result = make_maps(labelled_photos, first, size=96, seed=5)
    assert result["made"] == 1 and result["skipped"] == 0
    assert _files(first) == files

    # Without labels JSON the photos are labelled by FaceLabeler (here a stand-in returning the same faces, rounded
    # as the JSON rounds them): the maps are the same, and a resumed run does not label again.
    calls = []
    image, faces = astronaut_faces
    rounded = faceinfo.faces_from_json(faceinfo.faces_to_json(faces, image.shape[1], image.shape[0]))

    class FakeLabeler:
        def label(self, image):
            calls.append(1)
            return rounded

        def close(self):
            pass

    monkeypatch.setattr(faceinfo, "FaceLabeler", FakeLabeler)
    shutil.rmtree(labelled_photos / "labels")
    third = tmp_path / "c"
    make_maps(labelled_photos, third, size=96, seed=5)
    assert len(calls) == 1
    assert {k: v for k, v in _files(third).items() if k != "manifest.jsonl"} == {
        k: v for k, v in files.items() if k != "manifest.jsonl"
    }
    assert make_maps(labelled_photos, third, size=96, seed=5)["skipped"] == 1 and len(calls) == 1


def test_maps_cli_and_errors(labelled_photos, tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.data.maps import make_maps
    from facetool.errors import FacetoolError

    out = tmp_path / "maps"
    runner = CliRunner()
    result = runner.invoke(build_app(), ["data", "maps", str(labelled_photos), "--out", str(out), "--size", "64"])
    assert result.exit_code == 0, result.output
    assert "made 1" in result.output and (out / "depth" / "astronaut_0.png").is_file()
    assert "Examples" in runner.invoke(build_app(), ["data", "maps", "--help"]).output
    for bad in (["--size", "8"], ["--template", "nope"], ["--size", "96"]):  # the last: out holds 64² maps
        result = runner.invoke(build_app(), ["data", "maps", str(labelled_photos), "--out", str(out), *bad])
        assert result.exit_code == 2 and "Traceback" not in result.output
    # Labels made for a different image size are refused, naming the file.
    label_file = labelled_photos / "labels" / "astronaut.json"
    data = json.loads(label_file.read_text())
    data["width"] += 10
    label_file.write_text(json.dumps(data))
    with pytest.raises(FacetoolError, match="astronaut.json"):
        make_maps(labelled_photos, tmp_path / "other", size=64)
