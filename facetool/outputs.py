"""The names facetool gives its result files, so inputs gathered from a folder can leave them out."""

from __future__ import annotations

import re
from pathlib import Path


def own_output_markers() -> set[str]:
    """The middle names of facetool's result files: every method's name, detect's ``faces``, an OBJ's ``texture``
    and reconstruct's ``--maps-dir`` maps (``depth``, ``correspondence``, ``mask``)."""
    from .plugins import get_host

    return set(get_host().generators.names()) | {"faces", "texture", "depth", "correspondence", "mask"}


_NUMBERED = re.compile(r"^(.*?)(-\d+)?$")
_FACE_PART = re.compile(r"^face\d+(-\d+)?$")


def is_own_output(path: Path, markers: set[str]) -> bool:
    """True for ``<stem>.<marker>[-N][.faceK[-N]].<ext>``: the names the commands give their results."""
    stem, *parts = path.name.split(".")
    parts = parts[:-1]  # between the photo's stem and the extension
    if not stem:
        return False
    if parts and _FACE_PART.match(parts[-1]):
        parts = parts[:-1]
    return bool(parts) and _NUMBERED.match(parts[-1]).group(1) in markers
