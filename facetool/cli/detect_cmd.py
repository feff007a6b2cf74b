"""``facetool detect``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FacetoolError
from .common import err, gather_inputs, out, output_paths, print_json, progress, shown

HELP = """Find faces: box, score, 5 points, and 68 points / 3D landmarks / head pose where the detector has them.

[b]Examples[/b]

  facetool detect photo.jpg

  facetool detect photo.jpg -o annotated.png --json

  facetool detect photos/ "more/*.png" --detector mtcnn --json > faces.json

  facetool detect group.jpg --detector dlib -D upsample=2
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def detect(
        images: list[str] = typer.Argument(..., help="Image files, folders, quoted globs, or - (standard input)."),
        detector: str | None = typer.Option(None, "--detector", "-d", help="Detector name (see facetool plugins)."),
        detector_option: list[str] = typer.Option([], "--detector-option", "-D", help="Detector setting key=value."),
        face: str = typer.Option("all", "--face", help="all, largest, or a face number (0 = largest)."),
        output: str | None = typer.Option(
            None, "--output", "-o", help="Annotated image, or a folder (ending in /; always one for several)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the face records as JSON."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    ) -> None:
        from ..device import resolve_device
        from ..imageio import IMAGE_SUFFIXES, prepare_outputs
        from ..pipeline import close_detector, load_detector, parse_face_choice

        choice = parse_face_choice(face)
        inputs = gather_inputs(images)
        targets = (
            output_paths(inputs, output, ".faces", ".png", IMAGE_SUFFIXES)
            if output is not None
            else [None] * len(inputs)
        )
        if output is not None:
            prepare_outputs(targets, protect=inputs)
        spec, model = load_detector(detector, detector_option, resolve_device(device))
        try:
            results, failures = _detect_all(inputs, targets, spec.name, model, choice)
        finally:
            close_detector(model)
        if as_json:
            print_json(results if len(inputs) > 1 else results[0])
        else:
            _print_table(results)
        if failures:
            raise FacetoolError(f"{len(failures)} of {len(inputs)} images failed (first: {failures[0]})")


def _detect_all(inputs: list[Path], targets: list, name: str, model, choice) -> tuple[list[dict], list[str]]:
    """Detect in every input; one bad file among several is reported and skipped, a single one raises."""
    from ..draw import annotate
    from ..imageio import read_image, write_image
    from ..pipeline import chosen_faces, detect_faces

    results, failures = [], []
    for path, target in zip(progress(inputs, "detecting"), targets, strict=True):
        try:
            image = read_image(path)
            # no face at all is an answer of detect; a --face past them is not
            faces = chosen_faces(detect_faces(model, image, name), choice, shown(path))
            if target is not None:
                write_image(target, annotate(image, faces), protect=inputs)
        except FacetoolError as error:
            if len(inputs) == 1:
                raise
            failures.append(str(error))
            err.print(f"skipped: {error}", highlight=False)
            continue
        record = {"image": shown(path), "width": image.shape[1], "height": image.shape[0], "detector": name,
                  "faces": [f.to_dict() for f in faces]}  # fmt: skip
        if target is not None:
            record["annotated"] = str(target)
        results.append(record)
    return results, failures


def _print_table(results: list[dict]) -> None:
    from rich.table import Table

    table = Table("image", "face", "score", "box (x1 y1 x2 y2)", "pose (yaw pitch roll)", "landmarks")
    for result in results:
        if not result["faces"]:
            table.add_row(result["image"], "-", "-", "no face found", "", "")
        for index, face in enumerate(result["faces"]):
            pose = face.get("pose")
            pose_text = " ".join(f"{pose[k]:+.0f}" for k in ("yaw", "pitch", "roll")) if pose else ""
            marks = "5" + (" + 68" if "points68" in face else "") + (" + 3D" if "landmarks3d" in face else "")
            box = " ".join(f"{v:.0f}" for v in face["box"])
            table.add_row(result["image"], str(index), f"{face['score']:.2f}", box, pose_text, marks)
    out.print(table)
    for result in results:
        if "annotated" in result:
            out.print(f"wrote {result['annotated']}", highlight=False)
