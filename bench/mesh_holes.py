"""Holes inside the face of every mesh ``facetool reconstruct`` makes from some photos (default detector, weights).

    python bench/mesh_holes.py PHOTO [PHOTO ...]

Prints one line per face: the photo, the face's index, its vertex and triangle counts and its inner holes
(:func:`facetool_facevision.mesh.inner_holes`: rims more than ``OUTLINE_PX`` inside the face's outline; the notches
cut at the outline do not count), then the total. The 2026-12-02 "before" (8 holes on the ten faces of t1.jpg,
Tom_Hanks_54745.png, astro112, astro-grey and the sample astronaut; 0 after) counted the mesh step of 7c1f6d5 the
same way: its ``mesh_from_maps`` loaded from ``git show 7c1f6d5:plugins/facetool_facevision/mesh.py``.
"""

from __future__ import annotations

import sys
import tempfile

import facetool_facevision.mesh as mesh_module
from typer.testing import CliRunner

from facetool.cli import build_app


def main(photos: list[str]) -> int:
    build = mesh_module.mesh_from_maps
    found: list[tuple[int, int, int]] = []

    def counting(depth, mask, photo, **options):
        mesh = build(depth, mask, photo, **options)
        found.append((len(mesh.vertices), len(mesh.faces), mesh_module.inner_holes(mesh, mask)))
        return mesh

    mesh_module.mesh_from_maps = counting  # the plugin looks it up at call time
    total = 0
    with tempfile.TemporaryDirectory() as folder:
        for photo in photos:
            found.clear()
            result = CliRunner().invoke(build_app(), ["reconstruct", photo, "-o", f"{folder}/"])
            if result.exit_code != 0:
                print(f"{photo}: {result.stderr.strip()}")
                continue
            for index, (vertices, faces, holes) in enumerate(found):
                print(f"{photo} face {index}: {vertices} vertices, {faces} triangles, {holes} inner holes")
                total += holes
    print(f"total inner holes: {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
