"""``--preview``: a PNG of a mesh file rendered offscreen by pyvista — front view in its colours or texture beside a
shaded three-quarter view that shows the shape.

Rendering needs an OpenGL library (OSMesa, EGL or X). A missing or broken one can abort the process in C code, so
the render runs in a child process (``python -m facetool.export.preview MESH PNG``): the parent turns any failure
into one line and the mesh already written stays.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..errors import FacetoolError

PREVIEW_TIMEOUT_S = 120
VIEW_SIZE = 512


def render_preview(mesh_path: str | Path, png_path: str | Path, size: int = VIEW_SIZE) -> Path:
    """Render ``mesh_path`` to ``png_path`` (atomically) in a child process; FacetoolError with one line on failure."""
    png_path = Path(png_path)
    command = [sys.executable, "-m", "facetool.export.preview", str(mesh_path), str(png_path), str(size)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PREVIEW_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FacetoolError(f"preview of {mesh_path}: rendering took over {PREVIEW_TIMEOUT_S} s (no GL?)") from None
    if done.returncode != 0 or not png_path.is_file():
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"renderer exited with status {done.returncode}"
        raise FacetoolError(f"preview of {mesh_path}: cannot render offscreen ({reason[:160]}); the mesh is written")
    return png_path


def _render(mesh_path: Path, png_path: Path, size: int) -> None:
    import numpy as np
    import pyvista as pv

    from ..imageio import write_image

    mesh = pv.read(str(mesh_path))
    if isinstance(mesh, pv.MultiBlock):  # glTF / GLB read back as a scene of blocks: one surface to draw
        mesh = mesh.combine().extract_surface()
    if mesh.n_points == 0 or mesh.n_cells == 0:
        raise SystemExit(f"{mesh_path} holds no triangles")
    texture = None
    if (
        mesh_path.suffix.lower() == ".obj"
        and mesh_path.with_suffix(".png").is_file()
        and "Texture Coordinates" in (mesh.point_data)
    ):
        texture = pv.read_texture(str(mesh_path.with_suffix(".png")))
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=(2 * size, size), border=False)
    plotter.set_background("white")
    plotter.subplot(0, 0)
    if texture is not None:
        plotter.add_mesh(mesh, texture=texture, lighting=False)
    elif "RGB" in mesh.point_data:
        plotter.add_mesh(mesh, scalars="RGB", rgb=True, lighting=False)
    else:
        plotter.add_mesh(mesh, color="#d8c4b0", smooth_shading=True)
    plotter.view_xy()  # the photo's view: looking down -z, y up
    plotter.subplot(0, 1)
    plotter.add_mesh(mesh.copy(), color="#d8c4b0", smooth_shading=True, specular=0.2)
    plotter.view_xy()
    plotter.camera.azimuth = 40  # three-quarter view: depth becomes visible
    plotter.camera.elevation = 10
    plotter.reset_camera()
    image = plotter.screenshot(return_img=True)
    plotter.close()
    write_image(png_path, np.ascontiguousarray(image[..., :3]))


if __name__ == "__main__":
    _render(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else VIEW_SIZE)
