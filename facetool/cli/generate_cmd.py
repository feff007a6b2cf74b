"""``facetool generate``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FacetoolError, UsageError
from .common import (
    STDOUT,
    check_stdout_output,
    err,
    is_folder,
    out,
    print_json,
    read_stdin,
    shown,
    task_method,
    write_stdout,
)

HELP = """Generate faces from noise with a generate method, optionally shaped like a given layout.

--landmarks FILE.json gives the layout (format: facetool.generate's docstring; {"size": S, "points": {name: [x, y]}}
with left_eye, right_eye, nose, mouth_left, mouth_right, chin); --like IMAGE takes it from the largest face of a
photo or drawing (--face N: another, numbered largest first as facetool detect -o labels them). The same --seed gives
the same images. Several images go into one grid (-o OUT.png) or one file each (-o a folder); -o - writes the
picture (PNG) to standard output.

[b]Examples[/b]

  facetool generate --method wgan-landmark --count 8 --seed 1 -o faces.png

  facetool generate --like photo.jpg --count 8 --seed 1 -o faces/

  facetool generate --like group.jpg --face 2 -o face.png   (the third largest face's layout)

  facetool generate --landmarks layout.json -o face.png

  facetool generate --like - -o - < photo.jpg > face.png   (standard input to standard output)

  facetool generate --like photo.jpg -o face.png --json   (the files, and the layout as a --landmarks file holds it)
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def generate(
        method: str | None = typer.Option(None, "--method", "-m", help="Generate method (default: the first)."),
        landmarks: Path | None = typer.Option(None, "--landmarks", help="Layout JSON file (see --help)."),
        # A str: Path("./-") would read as "-" (standard input), not the file of that name.
        like_arg: str | None = typer.Option(None, "--like", help="Layout from this image's largest face (-: stdin)."),
        face: str = typer.Option("largest", "--face", help="With --like: largest, or a face number (0 = largest)."),
        count: int = typer.Option(1, "--count", "-n", min=1, max=1024, help="How many images."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the noise: same seed, same images."),
        # A str, not a Path: a Path drops the trailing "/" that marks a folder still to be made.
        output: str = typer.Option(
            "generated.png", "--output", "-o", help="PNG (a grid), a folder (ending in /), or - (standard output)."
        ),
        option: list[str] = typer.Option([], "--option", "-O", help="Method setting key=value (facetool methods)."),
        size: int | None = typer.Option(None, "--size", help="Image size the method runs at."),
        weights: Path | None = typer.Option(None, "--weights", help="Weights file or training run to use."),
        detector: str | None = typer.Option(None, "--detector", "-d", help="Detector for --like."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
        as_json: bool = typer.Option(
            False,
            "--json",
            help='Print {"method", "seed", "count", "size", "layout" (null, or {"size", "points"} as --landmarks '
            'reads it), "outputs"}; a failure {"error"}.',
        ),
    ) -> None:
        from ..pipeline import parse_face_choice

        if landmarks is not None and like_arg is not None:
            raise UsageError("give --landmarks or --like, not both")
        choice = parse_face_choice(face)
        if choice == "all":
            raise UsageError("--face all: --like takes one face's layout (largest, or a face number)")
        if choice != "largest" and like_arg is None:
            raise UsageError(f"--face {face} picks the face --like reads: give --like IMAGE")
        if as_json and output == STDOUT:
            raise UsageError("--json and -o - would both write to standard output: give -o a file or folder")
        try:
            record = _generate(method, landmarks, like_arg, count, seed, output, option, size, weights, detector,
                               device, quiet=as_json, face=choice)  # fmt: skip
        except FacetoolError as error:  # --json: the failure as a record too (a usage error is the line alone)
            if as_json and not isinstance(error, UsageError):
                print_json({"error": str(error)})
            raise
        if as_json:
            print_json(record)


def _generate(method, landmarks, like_arg, count, seed, output, option, size, weights, detector, device,
              quiet: bool, face: str | int = "largest") -> dict:  # fmt: skip
    """The command's work; returns its ``--json`` record."""
    from ..device import resolve_device
    from ..generate import layout_record
    from ..imageio import IMAGE_SUFFIXES, prepare_outputs
    from ..methods import checked_images, resolve_weights
    from ..options import parse_options
    from ..pipeline import check_assets

    like = Path(like_arg) if like_arg not in (None, "-") else None  # standard input is read once all else fits
    name, spec, size = task_method(method, "generate", size, weights)
    options = parse_options(spec.options, option, f"method {name}")
    to_stdout = output == STDOUT
    folder = not to_stdout and (output.endswith(("/", "\\")) or is_folder(Path(output)))
    if to_stdout:
        check_stdout_output(1)
    elif not folder and Path(output).suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"-o {output}: give an image file (.png, .jpg, …: a grid) or a folder (ending in /)")
    targets = [Path(output) / f"{name}-seed{seed}-{i:03d}.png" for i in range(count)] if folder else [Path(output)]
    protect = [p for p in (like, landmarks) if p is not None]
    if not to_stdout:
        prepare_outputs(targets, protect=protect)
    if like_arg == "-":
        like = read_stdin()
    dev = resolve_device(device)
    check_assets(spec.assets)
    runner = spec.load(options, dev, resolve_weights(spec, weights))
    layout = None
    if landmarks is not None:
        from ..generate import read_layout

        layout = read_layout(landmarks)
    elif like is not None:
        layout = _layout_like(like, spec, runner, size, detector, dev, face)
    images = checked_images(runner(count, seed, layout), count, None, name)
    written = _write(images, None if to_stdout else Path(output), folder, name, seed, protect, quiet=quiet)
    side = int(images.shape[-1])
    record = None if layout is None else layout_record(layout, side)
    return {"method": name, "seed": seed, "count": count, "size": side, "layout": record,
            "outputs": [str(w) for w in written]}  # fmt: skip


LIKE_MIN_SIDE, LIKE_MAX_ASPECT = 32, 4  # the smallest picture --like reads a face from, and its widest shape


def _layout_like(image_path: Path, spec, runner, size: int, detector: str | None, device: str,
                 face: str | int = "largest"):  # fmt: skip
    """The layout of the chosen face (the largest, or number ``face``) the detector finds; else, with no face found,
    the method's own predictor's reading, if it has one."""
    from ..generate import layout_from_face
    from ..imageio import read_image
    from ..pipeline import chosen_faces, close_detector, detect_faces, load_detector

    image, name = read_image(image_path), shown(image_path)
    height, width = image.shape[:2]
    if min(height, width) < LIKE_MIN_SIDE or max(height, width) > LIKE_MAX_ASPECT * min(height, width):
        # No face or drawing of one fits there, and the predictor would read a layout from anything.
        raise FacetoolError(f"--like {name}: a {width}×{height} picture holds no face to take a layout from "
                            f"(at least {LIKE_MIN_SIDE} px a side, at most {LIKE_MAX_ASPECT}:1)")  # fmt: skip
    det_spec, det = load_detector(detector, [], device)
    try:
        faces = detect_faces(det, image, det_spec.name)
    finally:
        close_detector(det)
    if faces:
        return layout_from_face(chosen_faces(faces, face, f"--like {name}")[0], spec.template, size)
    predict = getattr(runner, "layout_from_image", None)
    if predict is None:
        raise FacetoolError(f"--like {name}: no face found (try another --detector)")
    # The predictor reads a layout from any picture, a blank one too: say which reader gave it.
    err.print(f"--like {name}: {det_spec.name} found no face; the layout is the one the method's predictor "
              "reads, as from a drawing", highlight=False)  # fmt: skip
    return predict(image)


def _write(images, output: Path | None, folder: bool, name: str, seed: int, protect: list[Path],
           quiet: bool = False) -> list[Path]:  # fmt: skip
    """The images as one file each into a folder, as one picture (a grid when several), or (``output`` None, for
    ``-o -``) that picture on standard output. ``quiet``: no line on stdout (``--json`` prints a record instead).
    Returns the files written."""
    from ..generate import image_grid
    from ..imageio import from_tensor, write_image

    plural = "s" if len(images) > 1 else ""
    if folder:
        output.mkdir(parents=True, exist_ok=True)
        written = [write_image(output / f"{name}-seed{seed}-{i:03d}.png", from_tensor(image), protect=protect)
                   for i, image in enumerate(images)]  # fmt: skip
        if not quiet:
            out.print(f"{len(images)} image{plural} -> {output}", highlight=False)
        return written
    picture = from_tensor(images[0]) if len(images) == 1 else image_grid(images)
    if output is None:
        write_stdout(picture)
        err.print(f"{len(images)} image{plural} -> -", highlight=False)
        return []
    written = write_image(output, picture, protect=protect)
    if not quiet:
        out.print(f"{len(images)} image{plural} -> {written}", highlight=False)
    return [written]
