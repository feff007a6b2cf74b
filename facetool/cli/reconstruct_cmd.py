"""``facetool reconstruct``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import FacetoolError, UsageError
from .common import err, gather_inputs, out, output_paths, print_json, progress, shown, task_method

HELP = """Rebuild a 3D face mesh from a photo with a reconstruct method.

Every face is found, aligned and reconstructed; several faces give one file each (OUT.face0.ply …). The format
follows the suffix of -o: .ply .obj (+ .mtl + texture) .stl .vtp .gltf .glb. Mesh units: the photo's pixels
(x right, y up, z towards the camera).

[b]Examples[/b]

  facetool reconstruct photo.jpg -o face.ply

  facetool reconstruct photo.jpg -o face.obj --maps-dir maps/

  facetool reconstruct photo.jpg -o face.glb --preview face.png

  facetool reconstruct photos/ -o meshes/ --json   (per photo: its faces, each mesh's file and size)

--preview renders each mesh offscreen (front view in colour beside a shaded three-quarter view); it needs an
OpenGL library (OSMesa, EGL or X), and without one says so in one line after the mesh is written.
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def reconstruct(
        images: list[str] = typer.Argument(..., help="Image files, folders, quoted globs, or - (standard input)."),
        method: str | None = typer.Option(None, "--method", "-m", help="Reconstruct method (default: the first)."),
        option: list[str] = typer.Option([], "--option", "-O", help="Method setting key=value (facetool methods)."),
        output: str | None = typer.Option(
            None, "--output", "-o", help="Mesh file, or a folder (ending in /; always one for several inputs)."
        ),
        face: str = typer.Option("all", "--face", help="all, largest, or a face number (0 = largest)."),
        size: int | None = typer.Option(None, "--size", help="Crop size the method runs at."),
        aligned: bool = typer.Option(False, "--aligned", help="Inputs are aligned crops: skip detection."),
        maps_dir: Path | None = typer.Option(None, "--maps-dir", help="Also save each face's maps (PNG and NPY)."),
        preview: Path | None = typer.Option(None, "--preview", help="Also render each mesh to this PNG."),
        weights: Path | None = typer.Option(None, "--weights", help="Weights file or training run to use."),
        detector: str | None = typer.Option(None, "--detector", "-d", help="Detector name."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
        as_json: bool = typer.Option(
            False,
            "--json",
            help='Print per input {"input", "faces", "meshes": [{"file", "vertices", "triangles"}], "previews"}; a '
            'list for several inputs; a failed input {"input", "error"} (+ "meshes" when only its preview failed).',
        ),
    ) -> None:
        from ..device import resolve_device
        from ..export.mesh_formats import companion_files, mesh_exporters
        from ..imageio import prepare_outputs
        from ..methods import resolve_weights
        from ..options import parse_options
        from ..pipeline import check_assets, close_detector, load_detector, parse_face_choice

        name, spec, size = task_method(method, "reconstruct", size, weights)
        formats = mesh_exporters()
        choice = parse_face_choice(face)
        inputs = gather_inputs(images, writes_beside=output is None)
        if preview is not None and (preview.suffix.lower() != ".png" or len(inputs) != 1):
            raise UsageError("--preview takes a .png path and one input image")
        # A folder gets .ply files; a file's suffix picks the format (output_paths refuses unknown ones up front).
        given = Path(output).suffix.lower() if output is not None else ""
        targets = output_paths(inputs, output, "", given if given in formats else ".ply", formats)
        companions = [c for t in targets for c in companion_files(t)]  # an OBJ's .mtl and texture, checked too
        prepare_outputs(targets + companions + ([preview] if preview is not None else []), protect=inputs)
        dev = resolve_device(device)
        check_assets(spec.assets)
        runner = spec.load(parse_options(spec.options, option, f"method {name}"), dev, resolve_weights(spec, weights))
        det_spec, det = (None, None) if aligned else load_detector(detector, None, dev)
        failures: list[str] = []
        records: list[dict[str, Any]] = []
        try:
            for path, target in zip(progress(inputs, f"reconstruct {name}"), targets, strict=True):
                meshes: list[dict[str, Any]] = []
                try:
                    written = _one(path, target, spec, runner, det_spec, det, choice, size, dev, maps_dir, inputs)
                    meshes = [{"file": str(p), "vertices": int(m.vertices.shape[0]), "triangles": int(m.faces.shape[0])}
                              for p, m in written]  # fmt: skip
                    previews = [] if preview is None else _previews([p for p, _ in written], preview, inputs)
                    records.append({"input": shown(path), "faces": len(written), "meshes": meshes,
                                    "previews": [str(p) for p in previews]})  # fmt: skip
                    if not as_json:
                        said = [f"{m['file']} ({m['vertices']} vertices, {m['triangles']} faces)" for m in meshes]
                        out.print(f"{shown(path)} -> {', '.join(said + [str(p) for p in previews])}", highlight=False)
                except FacetoolError as error:
                    # a preview that failed after the meshes were written keeps them in the record
                    failed = {"input": shown(path), "error": str(error), **({"meshes": meshes} if meshes else {})}
                    if len(inputs) == 1:
                        if as_json and not isinstance(error, UsageError):
                            print_json(failed)
                        raise
                    failures.append(str(error))
                    records.append(failed)
                    err.print(f"skipped: {error}", highlight=False)
        finally:
            close_detector(det)
        if as_json:
            print_json(records if len(inputs) > 1 else records[0])
        if failures:
            raise FacetoolError(f"{len(failures)} of {len(inputs)} images failed (first: {failures[0]})")

def _one(path, target, spec, runner, det_spec, det, choice, size, dev, maps_dir, inputs) -> list[tuple[Path, Any]]:
    """Reconstruct one photo: [(mesh file, Mesh)] per face."""
    from ..export.mesh_formats import companion_files, export_mesh
    from ..imageio import read_image
    from ..pipeline import choose_faces, detect_faces
    from ..reconstruct import reconstruct_photo

    image = read_image(path)
    faces = None
    if det is not None:
        found = detect_faces(det, image, det_spec.name)
        faces = choose_faces(found, choice, shown(path), image.shape, det_spec.name, getattr(det, "options", None))
    results = reconstruct_photo(image, runner, spec.template, faces, size, dev)
    written = []
    for index, result in enumerate(results):
        dest = target if len(results) == 1 else target.with_name(f"{target.stem}.face{index}{target.suffix}")
        if _is_input([dest, *companion_files(dest)], inputs):
            raise UsageError(f"{dest} (or its texture / material) is an input: choose another -o")
        written.append((export_mesh(result.mesh, dest), result.mesh))
        if maps_dir is not None:
            _save_maps(result.maps, Path(maps_dir), dest.stem)
    return written


def _is_input(paths: list[Path], inputs: list) -> bool:
    resolved = {Path(p).resolve() for p in inputs}
    return any(Path(p).resolve() in resolved for p in paths)


def _previews(meshes: list[Path], preview: Path, inputs: list) -> list[Path]:
    """One PNG per mesh: ``preview`` itself for one, ``<stem>.face<i>.png`` for several; never over a file just
    written (a mesh's texture) nor over an input."""
    from ..export.mesh_formats import companion_files
    from ..export.preview import render_preview

    pngs = (
        [preview]
        if len(meshes) == 1
        else [preview.with_name(f"{preview.stem}.face{i}.png") for i in range(len(meshes))]
    )
    written = {p.resolve() for mesh in meshes for p in (mesh, *companion_files(mesh))}
    for png in pngs:
        if png.resolve() in written:
            raise UsageError(f"--preview {png} would overwrite a file of the mesh: choose another name")
        if _is_input([png], inputs):
            raise UsageError(f"--preview {png} is an input: choose another name")
    return [render_preview(mesh, png) for mesh, png in zip(meshes, pngs, strict=True)]


def _save_maps(maps, folder: Path, stem: str) -> None:
    """Each map as ``<stem>.<name>.npy`` (float32, exact) and ``.png`` (8-bit, scaled to its own range)."""
    import numpy as np

    from ..imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for name, array in maps.items():
        array = np.asarray(array, dtype=np.float32)
        np.save(folder / f"{stem}.{name}.npy", array)
        finite = np.nan_to_num(array, nan=0.0)
        lo, hi = float(finite.min()), float(finite.max())
        scaled = ((finite - lo) / (hi - lo) * 255 if hi > lo else finite * 0).astype(np.uint8)
        write_image(folder / f"{stem}.{name}.png", scaled if scaled.ndim == 3 else np.repeat(scaled[..., None], 3, 2))
