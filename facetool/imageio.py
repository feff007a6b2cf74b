"""Reading and writing images, safely.

Every image enters facetool through :func:`read_image` as an ``(H, W, 3)`` uint8 RGB array, whatever the
file held (EXIF rotation, grayscale, palette, alpha, CMYK, 16-bit). Every output file is written
through :func:`atomic_output`: a temp file beside the target, then ``os.replace``, so a crash or a full disk
never leaves a half-written file, and inputs listed in ``protect`` are never overwritten.

Failures the user can fix raise :class:`~facetool.errors.ImageError` (or ``UsageError``) with a one-line
message that names the path. Importing this module must not import torch (the CLI has to start fast).
"""

from __future__ import annotations

import glob
import io
import os
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError, UsageError

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGE_SUFFIXES",
    "INPUT_SUFFIXES",
    "MAX_PIXELS_DEFAULT",
    "atomic_output",
    "expand_inputs",
    "from_tensor",
    "max_pixels",
    "prepare_outputs",
    "read_image",
    "read_image_with_info",
    "to_tensor",
    "write_image",
]

MAX_PIXELS_DEFAULT = 100_000_000  # env FACETOOL_MAX_PIXELS overrides
MAX_PIXELS_ENV = "FACETOOL_MAX_PIXELS"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".webp", ".tif", ".tiff", ".bmp"}
# What folders and globs take as inputs: the writable formats plus GIF, which is read (its first frame), never written.
INPUT_SUFFIXES = IMAGE_SUFFIXES | {".gif"}

# Output format per suffix (Pillow's names).
_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".pbm": "PPM",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
# Formats that keep an alpha channel; for the others we composite over white ourselves, because Pillow
# either refuses (JPEG) or silently drops alpha (BMP, PPM), leaving whatever colour was under it.
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the image upright (same table as ImageOps.exif_transpose).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Pillow's decompression-bomb limit is a process-wide global; we swap it for ours while opening and
# decoding, so this lock keeps concurrent reads from seeing each other's value (and warning filters).
_PIL_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- reading


def max_pixels() -> int:
    """The pixel-count limit: ``FACETOOL_MAX_PIXELS`` if set, else :data:`MAX_PIXELS_DEFAULT`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_PIXELS_DEFAULT
    try:
        value = int(raw.replace(",", "").replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"{MAX_PIXELS_ENV} must be a positive whole number of pixels, got {raw!r}")
    return value


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any image Pillow can decode as an upright ``(H, W, 3)`` uint8 RGB array.

    Applies the EXIF orientation; converts grayscale (L, I;16, I, F), palette, LA/RGBA (composited over
    white), CMYK (Pillow undoes the Adobe inversion of CMYK JPEGs) and 16-bit data (scaled, not clipped).
    The pixel count is checked from the header before decoding. Raises ImageError for a missing file,
    a directory, an empty file, a non-image, truncated or corrupt data, a zero-sized or too-large image.
    The file is only ever opened for reading.
    """
    return read_image_with_info(path)[0]


def read_image_with_info(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Like :func:`read_image`, plus what the file held.

    ``info``: ``format`` (Pillow's name, e.g. ``"JPEG"``), ``mode`` (the original Pillow mode, e.g.
    ``"I;16"``), ``size`` (``(width, height)`` as stored, before orientation) and ``orientation`` (the
    EXIF orientation 1-8 that was applied; 1 when absent or invalid) and ``frames`` (an animation's or a multi-page
    file's count: the first is read, and a note on stderr says so).
    """
    p = Path(path)
    _check_readable_file(p)
    limit = max_pixels()
    try:
        fp = open(p, "rb")  # noqa: SIM115 - closed below; we hand Pillow our own read-only handle
    except OSError as e:  # vanished or changed since the stat
        raise ImageError(f"{p}: cannot read ({_reason(e)})") from None
    with fp, _PIL_LOCK, warnings.catch_warnings():
        # Pillow warns (to stderr) between its limit and twice that; a warning there would break the
        # one-line error contract, so make it an exception we can translate.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        try:
            # Off while reading the header: we check the size ourselves, with a message naming it.
            Image.MAX_IMAGE_PIXELS = None
            try:
                im = Image.open(fp)
            except UnidentifiedImageError:
                raise ImageError(_not_an_image_message(p, fp)) from None
            except Exception as e:  # any plugin error on a malformed header means a bad file
                raise ImageError(f"{p}: image is truncated or corrupt (header: {_reason(e)})") from None
            with im:
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"{p}: image is empty ({width}x{height} pixels)")
                if width * height > limit:
                    raise ImageError(
                        f"{p}: {width}x{height} is {width * height:,} pixels, over the limit of {limit:,} "
                        f"(set {MAX_PIXELS_ENV} to raise it)"
                    )
                # Some formats check frame or tile sizes while decoding; hold them to our limit too.
                Image.MAX_IMAGE_PIXELS = limit
                _decode(im, p, limit)
                info = {
                    "format": im.format,
                    "mode": im.mode,
                    "size": (width, height),
                    "orientation": _exif_orientation(im),
                    "frames": getattr(im, "n_frames", 1),
                }
                if info["frames"] > 1:  # an animation or a multi-page TIFF: say which picture was used
                    print(f"note: {p} has {info['frames']} frames; the first is read", file=sys.stderr)
                rgb = _to_rgb_image(im, p)
                fix = _ORIENTATION_FIX.get(info["orientation"])
                if fix is not None:
                    rgb = rgb.transpose(fix)
                # np.array (not asarray): the result must be writable and outlive the closed image.
                array = np.array(rgb, dtype=np.uint8)
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    return array, info


#: Magic bytes of the picture formats a stream is read to its end for, even when its first bytes alone do not
#: open (a JPEG's EXIF and colour profile can run past them). Anything else must open from its first bytes.
_PICTURE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P1", b"P2", b"P3", b"P4",
                  b"P5", b"P6", b"\x00\x00\x01\x00")  # fmt: skip


def looks_like_picture(head: bytes) -> bool:
    """Whether the first bytes of a stream start a picture (by magic bytes, or Pillow opening them)."""
    if head.startswith(_PICTURE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[4:8] == b"ftyp":
        return True
    return picture_suffix(head) is not None


def picture_suffix(data: bytes) -> str | None:
    """The file suffix for a picture held in ``data`` (its format read by Pillow, sizes not checked: the reading
    of the file checks them with facetool's limit), or None when Pillow does not read it."""
    import io

    with _PIL_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
        except Exception:  # noqa: BLE001 - any failure to open means: not a picture Pillow reads
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    common = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "GIF": ".gif"}
    if fmt in common:
        return common[fmt]
    by_format = {f: ext for ext, f in sorted(Image.registered_extensions().items(), reverse=True)}
    return by_format.get(fmt or "")


def _check_readable_file(p: Path) -> None:
    # Stat first: clearer messages than Pillow's, and we never open a FIFO or device (open would block).
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({_reason(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{_as_dir(p)}: is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{p}: not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{p}: file is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p}: permission denied")


def _decode(im: Image.Image, p: Path, limit: int) -> None:
    # A full decode now, so truncation shows up here and not halfway through a pipeline. We keep
    # ImageFile.LOAD_TRUNCATED_IMAGES off: a half-grey face would silently poison results.
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{p}: image is over the pixel limit of {limit:,} (set {MAX_PIXELS_ENV} to raise it)"
        ) from None
    except MemoryError:
        raise ImageError(f"{p}: not enough memory to decode a {im.width}x{im.height} image") from None
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, EOFError, ... on bad data
        reason = _reason(e)
        detail = "" if "truncated" in reason else f" ({reason})"
        raise ImageError(f"{p}: image is truncated or corrupt{detail}") from None


def _exif_orientation(im: Image.Image) -> int:
    # Broken EXIF is common (phone editors, strippers); it must not make a decodable image unreadable.
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb_image(im: Image.Image, p: Path) -> Image.Image:
    """Any decoded mode -> an RGB Pillow image."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        # Pillow's convert("L") clips these at 255 instead of scaling, so scale them ourselves.
        return Image.fromarray(_high_depth_to_u8(np.asarray(im), mode)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return _over_white(im, p)
    if mode in ("L", "RGB") and im.info.get("transparency") is not None:
        return _over_white(im, p)  # a PNG tRNS colour key: that grey / colour is transparent
    try:
        # CMYK (naive formula, no ICC), YCbCr, LAB, HSV, P, 1, RGBX.
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageError(f"{p}: unsupported image mode {mode} ({_reason(e)})") from None


def _high_depth_to_u8(a: np.ndarray, mode: str) -> np.ndarray:
    if mode.startswith("I;16"):
        # Exact rounding of v * 255 / 65535 in integers: 0 -> 0, 65535 -> 255, 32768 -> 128.
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    # "I" (int32) and "F" (float32) carry no range, so infer it: Pillow stores 16-bit PGM/PPM and older
    # 16-bit PNGs as "I" in 0..65535; float images are usually 0..1. Anything else is stretched.
    x = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 65535:
        x = (x - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(x)
    elif mode == "F" and hi <= 1.0:
        x = x * 255.0
    elif mode == "F" and hi <= 255.0:
        pass
    else:
        x = x * (255.0 / 65535.0)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _over_white(im: Image.Image, p: Path) -> Image.Image:
    # Composite, not drop: dropping alpha exposes whatever colour the transparent pixels happen to hold
    # (often black), which detectors then see as part of the face.
    try:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
    except (ValueError, OSError) as e:
        raise ImageError(f"{p}: unsupported image mode {im.mode} ({_reason(e)})") from None
    return Image.fromarray(_composite_white(rgba))


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    rgb, alpha = rgba[..., :3].astype(np.uint32), rgba[..., 3:].astype(np.uint32)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


# Leading bytes of formats we can name when Pillow cannot decode the header.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _not_an_image_message(p: Path, fp: IO[bytes]) -> str:
    """Say what the file looks like, so the user knows whether it is corrupt or simply not an image."""
    fp.seek(0)
    head = fp.read(512)
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return f"{p}: {name} header is corrupt or uses an unsupported variant"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return f"{p}: WebP header is corrupt or uses an unsupported variant"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        if brand in ("heic", "heix", "hevc", "heim", "heis", "mif1", "msf1", "avif", "avis"):
            return f"{p}: HEIC/AVIF images are not supported (convert it to JPEG or PNG)"
        return f"{p}: not an image file (it looks like a video or MP4-family file)"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8", errors="strict" if len(head) < 512 else "ignore").lower()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            if "<svg" in text:
                return f"{p}: SVG vector images are not supported (export it to PNG)"
            if "<html" in text or "<!doctype html" in text:
                return f"{p}: not an image file (it looks like an HTML page; was the download blocked?)"
            return f"{p}: not an image file (it looks like text)"
    return f"{p}: not an image file (unrecognized format)"


# --------------------------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
    quality: int = 95,
) -> Path:
    """Write ``image`` atomically; the format comes from the suffix. Returns the path written.

    ``image``: ``(H, W)`` or ``(H, W, 1|3|4)``, uint8 or float in [0, 1] (clipped and rounded). Formats
    without alpha (JPEG, BMP, PPM/PGM/PBM) get RGBA composited over white; ``.pgm`` is written as
    grayscale and ``.pbm`` as 1-bit (threshold at 128). ``quality`` (1-100) applies to JPEG and WebP;
    WebP at 100 is lossless. Refuses to overwrite any path in ``protect``; creates missing parent folders.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        supported = ", ".join(sorted(_FORMATS))
        what = f"suffix {p.suffix!r}" if p.suffix else "no suffix"
        raise UsageError(f"{p}: cannot tell the image format from {what} (use one of {supported})")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise UsageError(f"image quality must be a whole number from 1 to 100, got {quality!r}")

    im = _array_to_pil(image, fmt, suffix)
    params = _save_params(fmt, quality)
    with atomic_output(p, "wb", protect=protect) as f:
        try:
            im.save(f, format=fmt, **params)
        except OSError as e:  # a full disk or an encoder failure; atomic_output drops the temp file
            raise ImageError(f"{p}: could not write the image ({_reason(e)})") from None
    return p


def encode_png(image: np.ndarray) -> bytes:
    """``image`` as :func:`write_image` takes it -> the bytes of a PNG file (for ``-o -``, standard output)."""
    buffer = io.BytesIO()
    _array_to_pil(image, "PNG", ".png").save(buffer, format="PNG")
    return buffer.getvalue()


def _save_params(fmt: str, quality: int) -> dict[str, Any]:
    if fmt == "JPEG":
        # Full-resolution chroma at high quality: 4:2:0 visibly smears colour edges (lips, eyes).
        return {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if fmt == "WEBP":
        return {"quality": quality, "lossless": quality >= 100}
    return {}


def _array_to_pil(image: np.ndarray, fmt: str, suffix: str) -> Image.Image:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, 1|3|4), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"cannot write an empty image of shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating):
        a = np.rint(np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 or float image, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 4 and fmt not in _ALPHA_FORMATS:
        a = _composite_white(a)
    im = Image.fromarray(np.ascontiguousarray(a))
    if suffix == ".pgm" and im.mode != "L":
        im = im.convert("L")
    elif suffix == ".pbm":
        # Threshold, not Pillow's default Floyd-Steinberg dither: a mask should stay a mask.
        im = im.convert("L").convert("1", dither=Image.Dither.NONE)
    return im


@contextmanager
def atomic_output(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[IO[Any]]:
    """Yield a file object for a temp file beside ``path``; on success fsync it and ``os.replace`` it
    onto ``path``. On any exception the temp file is removed and an existing ``path`` is left untouched.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8). Refuses (ImageError) to write over a path in
    ``protect``; creates missing parent folders. The new file gets the permissions a plain ``open``
    would give it (or keeps those of the file it replaces).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_output mode must be 'w' or 'wb', got {mode!r}")
    p = Path(path)
    _refuse_protected(p, protect)
    if p.is_dir():
        raise ImageError(f"{_as_dir(p)}: is a directory; give a file name to write to")
    parent = _ensure_parent(p)
    try:
        # Shortened name: the temp name must stay under the 255-byte file name limit too.
        fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{p.name[:100]}.", suffix=".tmp")
    except PermissionError:
        raise ImageError(f"{_as_dir(parent)}: directory is not writable") from None
    except OSError as e:
        raise ImageError(f"{_as_dir(parent)}: cannot create a file here ({_reason(e)})") from None
    tmp = Path(tmp_name)
    f = None
    try:
        # mkstemp makes 0600 files; an output should look like any other file the user creates.
        with suppress(OSError):
            os.fchmod(fd, _file_mode_for(p))
        f = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        yield f
        try:
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename, or a crash can leave an empty file
            f.close()
            os.replace(tmp, p)
        except OSError as e:  # typically a full disk or a quota
            raise ImageError(f"{p}: could not write ({_reason(e)})") from None
    except BaseException:
        # Also on KeyboardInterrupt: never leave a stray temp file behind, never touch `path`.
        with suppress(OSError):
            if f is None:
                os.close(fd)
            else:
                f.close()  # closes the descriptor even if its final flush fails again
        with suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(parent)


def prepare_outputs(targets: Iterable[str | os.PathLike[str]], protect: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Check, before any work, that every target can be written: not an input, not a folder, and its folder made
    and writable (a probe file is created and removed). A batch into a read-only folder then fails in one line
    at the start, not once per image after each has been computed."""
    protect = list(protect)
    parents: set[Path] = set()
    for target in targets:
        p = Path(target)
        _check_name_length(p)  # first: a too-long name makes even is_dir() raise
        try:
            _refuse_protected(p, protect)
        except ImageError:  # asked for on the command line: a usage error (2), as the other -o checks
            raise UsageError(f"{p} is an input file: choose another -o (refusing to overwrite it)") from None
        if p.is_dir():
            raise ImageError(f"{_as_dir(p)}: is a directory; give a file name to write to")
        parents.add(_ensure_parent(p))
    for parent in sorted(parents):
        try:
            fd, probe = tempfile.mkstemp(dir=parent, prefix=".facetool-probe.", suffix=".tmp")
        except PermissionError:
            raise ImageError(f"{_as_dir(parent)}: directory is not writable") from None
        except OSError as e:
            raise ImageError(f"{_as_dir(parent)}: cannot create a file here ({_reason(e)})") from None
        os.close(fd)
        with suppress(OSError):
            os.unlink(probe)


def _check_name_length(p: Path) -> None:
    """UsageError for a file name longer than its folder takes (most: 255 bytes), found before any work."""
    length = len(os.fsencode(p.name))
    if length <= 143:  # the shortest limit in common use (eCryptfs): no need to ask the file system
        return
    folder = next((q for q in (p.parent, *p.parent.parents) if q.is_dir()), Path("."))  # it may not exist yet
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows has no pathconf
        limit = 255
    if length > limit:
        raise UsageError(f"{p.name[:32]}…{p.suffix}: the file name is {length} bytes; its folder takes at most {limit}")


def _refuse_protected(p: Path, protect: Iterable[str | os.PathLike[str]]) -> None:
    for item in protect:
        q = Path(item)
        try:
            same = os.path.samefile(p, q)  # follows symlinks and catches hard links
        except OSError:  # one of them does not exist (yet): compare where the paths point
            same = p.resolve() == q.resolve()
        if same:
            raise ImageError(f"refusing to overwrite the input file {q}")


def _ensure_parent(p: Path) -> Path:
    parent = p.parent
    if parent.is_dir():
        return parent
    # Find the part of the path that exists, to name the real culprit.
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ImageError(f"{p}: cannot create folder {_as_dir(parent)} because {existing} is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise ImageError(
            f"{_as_dir(existing)}: directory is not writable (needed to create {_as_dir(parent)})"
        ) from None
    except OSError as e:
        raise ImageError(f"{_as_dir(parent)}: cannot create directory ({_reason(e)})") from None
    return parent


def _file_mode_for(p: Path) -> int:
    try:
        return stat.S_IMODE(p.stat().st_mode)  # replacing a file: keep its permissions
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows the umask without changing it; elsewhere set-and-restore (briefly racy, harmless).
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(d: Path) -> None:
    # Makes the rename itself durable; best effort (not possible on every OS / filesystem).
    with suppress(OSError, AttributeError):
        dir_fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------------------------------------- inputs


def expand_inputs(
    items: Sequence[str | os.PathLike[str]],
    skip: Callable[[Path], bool] | None = None,
    skipped: list[Path] | None = None,
) -> list[Path]:
    """Files, folders and glob patterns -> a de-duplicated list of files, in the order given.

    A file is taken as is (whatever its suffix). A folder contributes its image files (by suffix,
    sorted, not recursive, hidden files skipped). A pattern the shell did not expand (quoted) is globbed
    (``**`` recurses) and contributes the image files it matches. A missing path, a pattern with no
    match, or a folder / pattern with no image files raises ImageError naming it.

    ``skip(path)`` true leaves a folder's or pattern's file out (appended to ``skipped``): the commands use
    it for their own earlier outputs, so a second run over a folder does not stylize its first run's
    drawings. A file named on its own is always taken.
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def keep(found: list[Path]) -> list[Path]:
        if skip is None:
            return found
        left = []
        for c in found:
            if not skip(c):
                left.append(c)
            elif skipped is not None:
                skipped.append(c)
        return left

    def add(path: Path) -> None:
        key = path.resolve()  # so ./a.jpg, a.jpg and a symlink to it count once
        if key not in seen:
            seen.add(key)
            out.append(path)

    suffixes = ", ".join(sorted(INPUT_SUFFIXES))
    for item in items:
        text = os.fspath(item)
        if not text:
            raise ImageError("an input path is empty")
        p = Path(text)
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if _is_image_file(c))
            if not found:
                raise ImageError(f"{_as_dir(p)}: no image files in this folder (looked for {suffixes})")
            found = keep(found)
            if not found:
                raise ImageError(f"{_as_dir(p)}: only facetool's own outputs in this folder; name them to use them")
            for c in found:
                add(c)
        elif p.exists():
            add(p)  # an existing name wins even if it contains glob characters
        elif any(c in text for c in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ImageError(f"{text}: no files match this pattern")
            images = [Path(m) for m in matches if _is_image_file(Path(m))]
            if not images:
                raise ImageError(f"{text}: the pattern matches no image files (looked for {suffixes})")
            images = keep(images)
            if not images:
                raise ImageError(f"{text}: the pattern matches only facetool's own outputs; name them to use them")
            for m in images:
                add(m)
        else:
            raise ImageError(f"{text}: no such file or directory")
    return out


def _is_image_file(p: Path) -> bool:
    # Hidden files are skipped: macOS "._photo.jpg" resource forks have image suffixes but no image.
    return p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".") and p.is_file()


# ---------------------------------------------------------------------------------------------- tensors


def to_tensor(image: np.ndarray, device: Any = None) -> torch.Tensor:
    """``(H, W, C)`` or ``(H, W)`` uint8 -> ``(1, C, H, W)`` float32 in [0, 1], on ``device``."""
    import torch  # lazy: importing this module must not pay for torch

    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {a.shape}")
    if not a.flags.writeable:
        a = a.copy()  # torch.from_numpy warns on read-only arrays (e.g. np.asarray of a PIL image)
    t = torch.from_numpy(np.ascontiguousarray(a))
    if device is not None:
        t = t.to(device)  # move as uint8: a quarter of the bytes of float32
    return t.permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)


def from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` float in [0, 1] -> ``(H, W, C)`` uint8; C == 1 gives ``(H, W)``."""
    t = tensor.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(t.shape)}")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"expected a tensor of shape (1, C, H, W) or (C, H, W), got {tuple(t.shape)}")
    t = t.float().clamp(0.0, 1.0).mul(255.0).round().to("cpu")
    a = t.permute(1, 2, 0).contiguous().numpy().astype(np.uint8)
    return a[:, :, 0] if a.shape[2] == 1 else a


# ---------------------------------------------------------------------------------------------- helpers


def _as_dir(p: Path) -> str:
    s = str(p)
    return s if s.endswith(os.sep) else s + os.sep


def _reason(e: BaseException) -> str:
    # OSError's strerror reads better ("No space left on device") than its full repr with the path.
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text or type(e).__name__
