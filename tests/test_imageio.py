"""facetool.imageio: reading any image as upright RGB, rejecting bad files cleanly, writing atomically."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facetool.errors import ImageError, UsageError
from facetool.imageio import (
    IMAGE_SUFFIXES,
    MAX_PIXELS_DEFAULT,
    atomic_output,
    expand_inputs,
    from_tensor,
    max_pixels,
    read_image,
    read_image_with_info,
    to_tensor,
    write_image,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv("FACETOOL_MAX_PIXELS", raising=False)


def smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth colour image: lossy codecs reproduce it closely, so round trips can be compared."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1).astype(np.uint8)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bytes(width: int, height: int, bit_depth: int = 8, color_type: int = 2, raw: bytes = b"") -> bytes:
    """A PNG built by hand, so the header can claim anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_round_trip_every_suffix(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    rgb = smooth_rgb()
    if suffix == ".pgm":
        rgb = np.repeat(rgb[:, :, :1], 3, axis=2)  # grayscale format
    elif suffix == ".pbm":
        rgb = np.where(rgb[:, :, :1] > 127, 255, 0).repeat(3, axis=2).astype(np.uint8)  # 1-bit format

    assert write_image(path, rgb) == path
    back = read_image(path)

    assert back.shape == rgb.shape and back.dtype == np.uint8
    assert back.flags.writeable
    if suffix in {".jpg", ".jpeg", ".webp"}:
        assert np.abs(back.astype(int) - rgb).mean() < 2.0
    else:
        np.testing.assert_array_equal(back, rgb)
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_rgba_keeps_alpha_and_reads_over_white(tmp_path, suffix):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top opaque red, bottom fully transparent
    path = tmp_path / f"a{suffix}"
    write_image(path, rgba, quality=100)  # WebP at 100 is lossless
    with Image.open(path) as im:
        assert "A" in im.mode
    back = read_image(path)
    assert (back[:2] == [200, 0, 0]).all()
    assert (back[2:] == 255).all()


def test_rgba_to_jpeg_composites_over_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black
    path = write_image(tmp_path / "x.jpg", rgba)
    assert read_image(path).min() >= 250


def test_write_accepts_gray_single_channel_and_float(tmp_path):
    gray = smooth_rgb()[:, :, 0]
    write_image(tmp_path / "g.png", gray)
    write_image(tmp_path / "g1.png", gray[:, :, None])
    np.testing.assert_array_equal(read_image(tmp_path / "g.png")[:, :, 1], gray)
    np.testing.assert_array_equal(read_image(tmp_path / "g1.png")[:, :, 2], gray)

    f = np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], np.float32)
    write_image(tmp_path / "f.png", f)
    assert read_image(tmp_path / "f.png")[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_write_rejects_bad_arrays_and_suffixes(tmp_path):
    with pytest.raises(UsageError, match=r"\.png.*\.webp"):  # lists the supported suffixes
        write_image(tmp_path / "x.gif", smooth_rgb())
    with pytest.raises(UsageError, match="x: cannot tell"):
        write_image(tmp_path / "x", smooth_rgb())
    with pytest.raises(UsageError, match="quality"):
        write_image(tmp_path / "x.jpg", smooth_rgb(), quality=0)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint16))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- orientation, modes


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)  # wide: left half red, right half blue
    rgb[:, :20] = [255, 0, 0]
    rgb[:, 20:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)

    image, info = read_image_with_info(path)

    assert image.shape == (40, 20, 3)  # now tall
    assert info == {"format": "JPEG", "mode": "RGB", "size": (40, 20), "orientation": 6, "frames": 1}
    top, bottom = image[:15].mean(axis=(0, 1)), image[-15:].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 50  # 90 degrees clockwise: the left (red) half is on top
    assert bottom[2] > 200 and bottom[0] < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = np.random.default_rng(orientation).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(rgb).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    image, info = read_image_with_info(path)
    assert info["orientation"] == orientation
    np.testing.assert_array_equal(image, expected)


def save(path: Path, im: Image.Image, **kwargs) -> Path:
    im.save(path, **kwargs)
    return path


def test_grayscale_and_1bit(tmp_path):
    gray = smooth_rgb()[:, :, 1]
    image, info = read_image_with_info(save(tmp_path / "l.png", Image.fromarray(gray)))
    assert info["mode"] == "L" and image.shape == (*gray.shape, 3)
    assert all((image[:, :, c] == gray).all() for c in range(3))

    bits = Image.fromarray(gray > 100).convert("1")
    image = read_image(save(tmp_path / "b.png", bits))
    assert set(np.unique(image)) <= {0, 255}


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.array([[[200, 100, 0, 0], [200, 100, 0, 255], [200, 100, 0, 128]]], np.uint8)
    image, info = read_image_with_info(save(tmp_path / "rgba.png", Image.fromarray(rgba)))
    assert info["mode"] == "RGBA"
    half = [(200 * 128 + 255 * 127 + 127) // 255, (100 * 128 + 255 * 127 + 127) // 255, 127]
    assert image[0].tolist() == [[255, 255, 255], [200, 100, 0], half]

    la = Image.fromarray(np.array([[[10, 0], [10, 255]]], np.uint8), "LA")
    image, info = read_image_with_info(save(tmp_path / "la.png", la))
    assert info["mode"] == "LA"
    assert image[0].tolist() == [[255] * 3, [10] * 3]


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    assert read_image(save(tmp_path / "p.png", pal))[0].tolist() == [[255, 0, 0], [0, 255, 0]]

    image, info = read_image_with_info(save(tmp_path / "pt.png", pal, transparency=0))
    assert info["mode"] == "P"
    assert image[0].tolist() == [[255, 255, 255], [0, 255, 0]]  # index 0 is transparent -> white


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (16, 8), (0, 0, 0, 0))  # white
    cmyk.paste((255, 0, 0, 0), (0, 0, 8, 8))  # left half pure cyan
    path = save(tmp_path / "cmyk.jpg", cmyk, quality=95)  # Pillow writes an Adobe (inverted) CMYK JPEG
    image, info = read_image_with_info(path)
    assert info["mode"] == "CMYK" and image.shape == (8, 16, 3)
    assert np.abs(image[:, :6].mean(axis=(0, 1)) - [0, 255, 255]).max() < 8
    assert image[:, 10:].min() > 245


def gray16() -> np.ndarray:
    values = np.linspace(0, 65535, 64).round().astype(np.uint16)
    values[1] = 32768  # mid-grey; clipping would turn it into 255
    return values.reshape(4, 16)


def expected8(values16: np.ndarray) -> np.ndarray:
    return np.rint(values16.astype(np.float64) * 255 / 65535).astype(np.uint8)


@pytest.mark.parametrize("name", ["g16.png", "g16.tif"])
def test_16bit_grayscale_is_scaled_not_clipped(tmp_path, name):
    values = gray16()
    image, info = read_image_with_info(save(tmp_path / name, Image.fromarray(values)))
    assert info["mode"].startswith("I;16")
    np.testing.assert_array_equal(image[:, :, 0], expected8(values))
    assert image[0, 1, 0] == 128 and image.max() == 255 and image.min() == 0


def test_16bit_pgm_and_rgb_png(tmp_path):
    values = gray16()
    pgm = tmp_path / "g16.pgm"
    pgm.write_bytes(b"P5\n16 4\n65535\n" + values.astype(">u2").tobytes())
    image, info = read_image_with_info(pgm)
    assert info["mode"] == "I"  # Pillow opens 16-bit PGM as 32-bit "I"
    np.testing.assert_array_equal(image[:, :, 0], expected8(values))

    rgb16 = np.array([[[0, 32768, 65535]]], np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(1, 1, 16, 2, b"\x00" + rgb16.astype(">u2").tobytes()))
    assert read_image(path).tolist() == [[[0, 128, 255]]]


def test_float_tiff(tmp_path):
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    image, info = read_image_with_info(save(tmp_path / "f.tif", Image.fromarray(f, "F")))
    assert info["mode"] == "F"
    assert image[0, :, 0].tolist() == [0, 128, 255]


def test_one_pixel_image_is_valid(tmp_path):
    path = save(tmp_path / "one.png", Image.new("RGB", (1, 1), (1, 2, 3)))
    assert read_image(path).tolist() == [[[1, 2, 3]]]


# ------------------------------------------------------------------------------------------- bad inputs


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def png_random_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


BAD_FILES = {
    "empty.jpg": (b"", "empty"),
    "notes.jpg": (b"these are my notes, not a photo\n" * 4, "looks like text"),
    "truncated.jpg": (jpeg_bytes()[: len(jpeg_bytes()) // 2], "truncated or corrupt"),
    "truncated.png": (png_random_bytes()[: len(png_random_bytes()) // 2], "truncated or corrupt"),
    "noise.png": (np.random.default_rng(3).bytes(2000), "not an image file"),
    "zero.png": (png_bytes(0, 0), "PNG header is corrupt"),
    "page.jpg": (b"<!DOCTYPE html><html><body>Access denied</body></html>", "HTML page"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gives_image_error_and_is_left_alone(tmp_path, name):
    data, phrase = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    before = sha(path)
    with pytest.raises(ImageError, match=phrase) as err:
        read_image(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert sha(path) == before


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file") as err:
        read_image(tmp_path / "gone.jpg")
    assert str(tmp_path / "gone.jpg") in str(err.value)
    with pytest.raises(ImageError, match="is a directory") as err:
        read_image(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_pixel_limit_from_env_is_checked_before_decoding(tmp_path, monkeypatch):
    path = save(tmp_path / "small.png", Image.new("RGB", (20, 20)))
    monkeypatch.setenv("FACETOOL_MAX_PIXELS", "399")
    with pytest.raises(ImageError, match="20x20 is 400 pixels, over the limit of 399") as err:
        read_image(path)
    assert str(path) in str(err.value) and "FACETOOL_MAX_PIXELS" in str(err.value)
    monkeypatch.setenv("FACETOOL_MAX_PIXELS", "400")
    assert read_image(path).shape == (20, 20, 3)


def test_crafted_huge_header_is_refused_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000, 8, 2, b"\x00" * 10))
    before = sha(path)
    with pytest.raises(ImageError, match=r"100000x100000 is 10,000,000,000 pixels.*100,000,000") as err:
        read_image(path)
    assert str(path) in str(err.value)
    assert sha(path) == before
    assert max_pixels() == MAX_PIXELS_DEFAULT


def test_our_limit_replaces_pillows_and_is_restored(tmp_path, monkeypatch):
    # Pillow warns above its limit and fails above twice that; with ours raised, neither may happen.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    monkeypatch.setenv("FACETOOL_MAX_PIXELS", "1_000")
    path = save(tmp_path / "mid.png", Image.new("RGB", (20, 20)))  # 400 pixels: 8x Pillow's limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (20, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == 50


def test_bad_limit_env_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETOOL_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="FACETOOL_MAX_PIXELS"):
        read_image(save(tmp_path / "x.png", Image.new("RGB", (2, 2))))


# ---------------------------------------------------------------------------------------------- writing


def test_refuses_to_overwrite_protected_input(tmp_path):
    src = save(tmp_path / "photo.jpg", Image.new("RGB", (8, 8), (9, 9, 9)))
    before = sha(src)
    link = tmp_path / "link.jpg"
    link.symlink_to(src)
    hard = tmp_path / "hard.jpg"
    os.link(src, hard)
    spellings = [src, str(src), tmp_path / "sub" / ".." / "photo.jpg", link, hard]
    for target in spellings:
        with pytest.raises(ImageError, match="refusing to overwrite the input file"):
            write_image(target, smooth_rgb(), protect=[src])
    with pytest.raises(ImageError, match="refusing"), atomic_output(src, protect=[hard]) as f:
        f.write(b"x")
    assert sha(src) == before
    assert no_temp_files(tmp_path)


def test_atomic_output_failure_leaves_existing_file_untouched(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target, "w") as f:
        f.write("half of the new conte")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_atomic_output_text_and_binary(tmp_path):
    with atomic_output(tmp_path / "a.txt", "w") as f:
        f.write("héllo\n")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    with atomic_output(tmp_path / "nested" / "b.bin") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "nested" / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError), atomic_output(tmp_path / "c.bin", "ab"):
        pass
    assert no_temp_files(tmp_path) and no_temp_files(tmp_path / "nested")


def test_new_files_get_normal_permissions(tmp_path):
    path = write_image(tmp_path / "x.png", smooth_rgb())
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    path.chmod(0o640)
    write_image(path, smooth_rgb())
    assert path.stat().st_mode & 0o777 == 0o640  # replacing keeps the old permissions


def test_write_failure_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    target = write_image(tmp_path / "out.png", smooth_rgb())
    before = sha(target)

    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(ImageError, match="out.png: could not write the image.*No space left"):
        write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert sha(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_creates_missing_parent_directories(tmp_path):
    path = write_image(tmp_path / "a" / "b" / "c.png", smooth_rgb())
    assert path.is_file()


def test_parent_that_is_a_file(tmp_path):
    blocker = tmp_path / "report.txt"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="report.txt is a file") as err:
        write_image(blocker / "sub" / "x.png", smooth_rgb())
    assert str(blocker) in str(err.value)
    assert blocker.read_text() == "x"


def test_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes")
        with pytest.raises(ImageError, match="directory is not writable") as err:
            write_image(locked / "x.png", smooth_rgb())
        assert str(locked) in str(err.value)
    finally:
        locked.chmod(0o700)


def test_output_path_that_is_a_directory(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        write_image(tmp_path / "out.png", smooth_rgb())


# ----------------------------------------------------------------------------------------------- inputs


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "faces"
    (folder / "deeper").mkdir(parents=True)
    for name in ["b.jpg", "a.PNG", "c.webp", "notes.txt", ".hidden.jpg", "deeper/d.jpg"]:
        (folder / name).write_bytes(b"x")
    (tmp_path / "solo.tif").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return folder


def test_expand_folder_sorted_images_only(photos):
    assert expand_inputs(["faces"]) == [Path("faces/a.PNG"), Path("faces/b.jpg"), Path("faces/c.webp")]


def test_expand_mixed_keeps_order_and_dedupes(photos):
    got = expand_inputs(["solo.tif", "faces/c.webp", "faces", "./solo.tif", "faces/*.jpg", "faces/**/*.jpg"])
    assert got == [
        Path("solo.tif"),
        Path("faces/c.webp"),
        Path("faces/a.PNG"),
        Path("faces/b.jpg"),
        Path("faces/deeper/d.jpg"),
    ]
    assert expand_inputs(["faces/notes.txt"]) == [Path("faces/notes.txt")]  # named files are taken as is
    assert expand_inputs([]) == []


@pytest.mark.parametrize(
    ("item", "phrase"),
    [
        ("missing.jpg", "missing.jpg: no such file"),
        ("faces/*.gif", "faces/\\*.gif: no files match"),
        ("faces/*.txt", "matches no image files"),
        ("empty", "empty/: no image files"),
    ],
)
def test_expand_errors_name_the_item(photos, item, phrase):
    with pytest.raises(ImageError, match=phrase):
        expand_inputs(["faces", item])


# ---------------------------------------------------------------------------------------------- tensors


def test_tensor_round_trip():
    torch = pytest.importorskip("torch")
    rgb = smooth_rgb(5, 7)
    t = to_tensor(rgb)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    np.testing.assert_array_equal(from_tensor(t), rgb)
    np.testing.assert_array_equal(from_tensor(t[0]), rgb)
    assert from_tensor(t[:, :1]).shape == (5, 7)
    assert from_tensor(torch.full((1, 3, 2, 2), 2.0)).max() == 255
    with pytest.raises(ValueError):
        from_tensor(torch.zeros(2, 3, 4, 4))


def test_import_does_not_pull_in_torch():
    code = "import sys, facetool.imageio; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_a_name_too_long_for_its_folder_is_refused_before_any_work(tmp_path):
    from facetool.imageio import prepare_outputs

    near = tmp_path / ("n" * 246 + ".png")
    prepare_outputs([near])
    write_image(near, np.zeros((4, 4, 3), np.uint8))  # the atomic write's temp name fits as well
    assert [p.name for p in tmp_path.iterdir()] == [near.name]
    with pytest.raises(UsageError, match=r"the file name is 260 bytes; its folder takes at most 255"):
        prepare_outputs([tmp_path / "new" / ("n" * 256 + ".png")])
    assert not (tmp_path / "new").exists()


def test_a_gif_is_an_input_in_folders_and_a_multi_frame_file_says_which_frame(tmp_path, capsys):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    Image.new("RGB", (8, 8), "white").save(tmp_path / "still.png")
    assert [p.name for p in expand_inputs([tmp_path])] == ["anim.gif", "still.png"]
    image = read_image(gif)
    assert image[0, 0, 0] > 200 and image[0, 0, 1] < 50  # the first frame
    assert capsys.readouterr().err.strip() == f"note: {gif} has 3 frames; the first is read"
    read_image(tmp_path / "still.png")
    assert capsys.readouterr().err == ""
