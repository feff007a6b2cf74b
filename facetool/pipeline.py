"""The steps every command shares: pick and load a detector, detect, choose faces."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import FacetoolError, UsageError
from .faces import Face, sort_faces
from .options import parse_options

ENV_DETECTOR = "FACETOOL_DETECTOR"


def default_name(registry: Any, kind: str, task: str | None = None) -> str:
    """The highest-priority registered spec (ties: by name), optionally of one task."""
    specs = [s for s in registry.all().values() if task is None or getattr(s, "task", None) == task]
    if not specs:
        what = f"{task} method" if task else kind
        from .plugins import limited_note

        why = limited_note() or "install a plugin that provides one (see facetool plugins)"
        raise UsageError(f"no {what} is registered; {why}")
    return sorted(specs, key=lambda s: (-s.priority, s.name))[0].name


def check_assets(names: tuple[str, ...] | list[str]) -> None:
    """Raise AssetError naming the exact fetch command when any is missing or damaged."""
    from .assets import get_store

    store = get_store()
    for name in names:
        store.path(name)


def load_detector(name: str | None, option_pairs: list[str] | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """(spec, detector) for ``name`` (None: ``$FACETOOL_DETECTOR`` or the default)."""
    from .plugins import get_host

    registry = get_host().detectors
    name = name or os.environ.get(ENV_DETECTOR) or default_name(registry, "detector")
    spec = registry.get(name)
    options = parse_options(spec.options, option_pairs, f"detector {name}")
    check_assets(spec.assets)
    return spec, spec.load(options, device)


def detect_faces(detector: Any, image: np.ndarray, detector_name: str = "") -> list[Face]:
    """Run a detector; faces come back largest first with the detector's name filled in."""
    found = detector.detect(image)
    faces = sort_faces(checked_faces(found, detector_name))
    for face in faces:
        face.detector = face.detector or detector_name
    return faces


def checked_faces(found: Any, detector_name: str = "") -> list[Face]:
    """A detector's result as a list of faces, or PluginError saying how it breaks the contract (a list of
    :class:`facetool.faces.Face`, finite, 5 points that are not one point): a NaN box or five equal points would
    otherwise be cut as a blank crop and drawn over the photo."""
    from .errors import PluginError

    who = f"detector {detector_name}" if detector_name else "the detector"
    want = "expected a list of facetool.faces.Face"
    if found is None or isinstance(found, (str, bytes, dict)) or not hasattr(found, "__iter__"):
        raise PluginError(f"{who} returned {type(found).__name__}; {want}")
    faces = list(found)
    for face in faces:
        if not isinstance(face, Face):
            raise PluginError(f"{who} returned a {type(face).__name__} among its faces; {want}")
        points = np.asarray(face.points5, dtype=np.float64)
        if not (np.isfinite(points).all() and np.isfinite(np.asarray(face.box, dtype=np.float64)).all()):
            raise PluginError(f"{who} returned a face with a non-finite box or points; {want} with finite values")
        if np.ptp(points, axis=0).max() < 1.0:
            raise PluginError(f"{who} returned a face whose 5 points are one point; {want} with its 5 landmarks")
    return faces


def parse_face_choice(value: str) -> str | int:
    """``all``, ``largest`` or a 0-based index (faces are numbered largest first)."""
    value = value.strip().lower()
    if value in ("all", "largest"):
        return value
    try:
        index = int(value)
    except ValueError:
        raise UsageError(f"--face takes all, largest or a face number, not {value!r}") from None
    if index < 0:
        raise UsageError("--face numbers start at 0")
    return index


def select_faces(faces: list[Face], choice: str | int) -> list[Face]:
    """Faces sorted largest first -> the chosen ones; an index past the end selects none."""
    if choice == "all":
        return faces
    if choice == "largest":
        return faces[:1]
    assert isinstance(choice, int)
    return faces[choice : choice + 1]


def chosen_faces(found: list[Face], choice: str | int, where: str) -> list[Face]:
    """:func:`select_faces`, with a ``--face`` number past the faces found a usage error (none found: [])."""
    faces = select_faces(found, choice)
    if found and not faces:
        raise UsageError(f"{where}: --face {choice} asked for, but the photo has {len(found)} face(s)")
    return faces


def choose_faces(
    found: list[Face],
    choice: str | int,
    where: str,
    image_shape: tuple[int, ...],
    detector: str = "",
    options: Any = None,
) -> list[Face]:
    """The faces a command works on, or one line saying why there are none.

    A ``--face`` number past the faces found is a usage error (2); no face at all is a failure (1) whose hint, on a
    large photo, points at a ``min-face`` setting — of ``detector`` if it has one, else of a detector that does:
    detectors search faces down to a fraction of the photo's short side, and a small face in a group shot is below.
    ``options``: the detector's settings; a ``min_face`` already at 20 px or less gets no such hint.
    """
    faces = chosen_faces(found, choice, where)
    if not faces:
        hint = "try another --detector, or --aligned for an aligned crop"
        small = _min_face_detectors()
        if small and min(image_shape[:2]) >= LARGE_PHOTO:
            flags = _small_face_flags(options) if detector in small else f"-d {small[0]} -D min-face={SMALL_FACE}"
            if flags:
                hint = f"for small faces in a large photo: {flags}; else {hint}"
        raise FacetoolError(f"{where}: no face found ({hint})")
    return faces


# Short side (px) from which the no-face hint mentions min-face: there the default proposals skip faces under ~40 px.
LARGE_PHOTO = 1000
SMALL_FACE = 20  # the min-face the hint suggests (MTCNN's own default)


def _small_face_flags(options: Any) -> str | None:
    """The ``-D`` flags that make a detector with a ``min_face`` setting search faces of SMALL_FACE px, or None."""
    custom = getattr(options, "small_face_flags", None)
    if callable(custom):
        return custom(SMALL_FACE)
    if 0 < (getattr(options, "min_face", 0) or 0) <= SMALL_FACE:
        return None
    return f"-D min-face={SMALL_FACE}"


def _min_face_detectors() -> list[str]:
    import dataclasses

    from .plugins import get_host

    specs = get_host().detectors.all().values()
    return sorted(
        s.name for s in specs if s.options is not None and "min_face" in {f.name for f in dataclasses.fields(s.options)}
    )


def close_detector(detector: Any) -> None:
    """Release a detector's native resources (MediaPipe's graph must be closed explicitly)."""
    close = getattr(detector, "close", None)
    if callable(close):
        close()
