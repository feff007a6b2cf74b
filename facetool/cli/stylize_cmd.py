"""``facetool stylize``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FacetoolError, UsageError
from .common import (
    STDOUT,
    check_stdout_output,
    err,
    gather_inputs,
    out,
    output_paths,
    print_json,
    progress,
    shown,
    task_method,
    write_stdout,
)

HELP = """Turn portrait photos into drawings, cartoons or constructions with a stylize method.

Every face is found, aligned to the method's template, stylized and pasted back: the output has the input's size.
Use --crop for the aligned result alone, --face to choose faces, --aligned when the input already is an aligned crop.

[b]Examples[/b]

  facetool stylize photo.jpg --method apdrawing

  facetool stylize photo.jpg --method apdrawing --face largest --crop -o drawing.png

  facetool stylize photo.jpg --method cartoon --hair blonde --crop -o avatar.png

  facetool stylize - -o - < photo.jpg > drawing.png   (standard input to standard output, PNG)

  facetool stylize photos/ -m cartoon -o avatars/ --json   (files, faces and auto's picks per photo)

  facetool methods   (lists the methods and their -O options)
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def stylize(
        images: list[str] = typer.Argument(..., help="Image files, folders, quoted globs, or - (standard input)."),
        method: str | None = typer.Option(None, "--method", "-m", help="Stylize method (default: the first)."),
        option: list[str] = typer.Option([], "--option", "-O", help="Method setting key=value (facetool methods)."),
        hair: str | None = typer.Option(None, "--hair", help="Hair colour, for methods that take one (= -O hair=…)."),
        skin: str | None = typer.Option(None, "--skin", help="Skin tone, for methods that take one (= -O skin=…)."),
        variant: str | None = typer.Option(
            None, "--variant", help="Method variant, where it has some (= -O variant=…)."
        ),
        output: str | None = typer.Option(
            None,
            "--output",
            "-o",
            help="Output image, a folder (ending in /; always one for several), or - (standard output, PNG).",
        ),
        face: str = typer.Option("all", "--face", help="all, largest, or a face number (0 = largest)."),
        crop: bool = typer.Option(False, "--crop", help="Aligned results alone: OUT.face0.png, OUT.face1.png …"),
        size: int | None = typer.Option(None, "--size", help="Crop size the method runs at."),
        aligned: bool = typer.Option(False, "--aligned", help="Inputs are aligned crops: skip detection."),
        background: str | None = typer.Option(None, "--background", help="photo or white (default: the method's)."),
        mask: Path | None = typer.Option(
            None,
            "--mask",
            help="Person mask of the photo (white or opaque = person), for methods that split hair / background.",
        ),
        weights: Path | None = typer.Option(None, "--weights", help="Weights file or training run to use."),
        detector: str | None = typer.Option(None, "--detector", "-d", help="Detector name."),
        detector_option: list[str] = typer.Option([], "--detector-option", "-D", help="Detector setting key=value."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
        as_json: bool = typer.Option(
            False,
            "--json",
            help='Print per input {"input", "faces", "notes" (what auto picked, per face), "outputs"}; a list for '
            'several inputs; a failed input {"input", "error"}.',
        ),
    ) -> None:
        from ..device import resolve_device
        from ..imageio import IMAGE_SUFFIXES, prepare_outputs
        from ..methods import resolve_weights
        from ..options import parse_options
        from ..pipeline import check_assets, close_detector, load_detector, parse_face_choice

        name, spec, size = task_method(method, "stylize", size, weights)
        if background not in (None, "photo", "white"):
            raise UsageError(f"--background takes photo or white, not {background!r}")
        choice = parse_face_choice(face)
        option = list(option) + _shorthand(spec, name, hair=hair, skin=skin, variant=variant)
        options = parse_options(spec.options, option, f"method {name}")
        inputs = gather_inputs(images, writes_beside=output is None)
        if mask is not None and len(inputs) != 1:
            raise UsageError("--mask is the person mask of one photo: give a single input with it")
        if output == STDOUT:
            if as_json:
                raise UsageError("--json and -o - would both write to standard output: give -o a file or folder")
            check_stdout_output(len(inputs))
            targets = [Path(STDOUT)]
        else:
            targets = output_paths(inputs, output, f".{name}", ".png", IMAGE_SUFFIXES)
            prepare_outputs(targets, protect=inputs)
        dev = resolve_device(device)
        check_assets(spec.assets)
        runner = spec.load(options, dev, resolve_weights(spec, weights))
        # A runner may know better than its spec which page its results go on (lines alone: white paper).
        background = background or getattr(runner, "background", None) or spec.background
        foreground = None
        if mask is not None:
            if not getattr(runner, "takes_foreground", False):
                raise UsageError(f"method {name} does not use a person mask (--mask)")
            foreground = _read_mask(mask)
        det_spec, det = (None, None) if aligned else load_detector(detector, detector_option, dev)
        try:
            records, failures = _stylize_all(
                inputs, targets, spec, runner, det_spec, det, choice, size, crop, background, dev, foreground,
                to_stdout=output == STDOUT, quiet=as_json
            )  # fmt: skip
        except FacetoolError as error:  # one input (several are recorded one by one): its record, then the line
            if as_json and not isinstance(error, UsageError):
                print_json({"input": shown(inputs[0]), "error": str(error)})
            raise
        finally:
            close_detector(det)
        if as_json:
            print_json(records if len(inputs) > 1 else records[0])
        if failures:
            raise FacetoolError(f"{len(failures)} of {len(inputs)} images failed (first: {failures[0]})")


def _shorthand(spec, name: str, **values: str | None) -> list[str]:
    """--hair / --skin / --variant as the -O settings they stand for; a method without that setting refuses them."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(spec.options)} if spec.options is not None else set()
    pairs = []
    for key, value in values.items():
        if value is None:
            continue
        if key not in fields:
            raise UsageError(f"method {name} has no {key} setting (--{key}); see facetool methods {name}")
        pairs.append(f"{key}={value}")
    return pairs


def _notes(runner, count: int) -> list[str]:
    """A runner's ``notes`` of its last call (one per face: what ``auto`` picked), for the ``count`` faces drawn."""
    return [str(n) for n in (getattr(runner, "notes", None) or [])][:count] if count else []


def _notes_suffix(notes: list[str]) -> str:
    """Notes as a suffix of the output line: ``(…)`` for one face, ``(face0: …; face1: …)`` for several."""
    if not notes:
        return ""
    if len(notes) == 1:
        return f" ({notes[0]})"
    return " (" + "; ".join(f"face{i}: {n}" for i, n in enumerate(notes)) + ")"


def _read_mask(path: Path):
    """A person mask as (H, W) bool: the alpha channel of a cut-out (RGBA / LA), else luma above mid-gray."""
    import numpy as np
    from PIL import Image

    from ..imageio import read_image

    image = read_image(path)  # every check and one-line error of an input image (EXIF rotation applied)
    with Image.open(path) as im:
        if "A" in im.getbands():
            from PIL import ImageOps

            alpha = np.asarray(ImageOps.exif_transpose(im).getchannel("A"))
            return alpha > 127
    return image.mean(axis=2) > 127


def _stylize_all(
    inputs, targets, spec, runner, det_spec, det, choice, size, crop, background, dev, foreground=None, to_stdout=False,
    quiet=False
) -> tuple[list[dict], list[str]]:  # fmt: skip
    """Stylize every input; one bad file among several is reported and skipped, a single one raises.
    ``to_stdout``: the one input's one result goes to standard output (``-o -``), its line to stderr. ``quiet``: no
    line per input on stdout (``--json`` prints the returned records instead). Returns (records, failures)."""
    from ..imageio import read_image, write_image
    from ..pipeline import choose_faces, detect_faces
    from ..stylize import stylize_photo

    records: list[dict] = []
    failures: list[str] = []
    written_in_run: set[Path] = set()  # one run never writes a file twice (per-face names vs. numbered stems)
    for path, target in zip(progress(inputs, f"stylize {spec.name}"), targets, strict=True):
        try:
            image = read_image(path)
            faces = None
            if det is not None:
                found = detect_faces(det, image, det_spec.name)
                options = getattr(det, "options", None)  # the hint reads its min-face
                faces = choose_faces(found, choice, shown(path), image.shape, det_spec.name, options)
                if to_stdout and crop and len(faces) > 1:  # before the method runs
                    raise UsageError(f"-o -: {shown(path)} has {len(faces)} faces and --crop makes a picture of "
                                     "each; choose one with --face N (0 = the largest)")  # fmt: skip
            results = stylize_photo(image, runner, spec.template, faces, size, crop=crop,
                                    background=background, device=dev, foreground=foreground,
                                    method=spec.name)  # fmt: skip
            notes = _notes(runner, 1 if faces is None else len(faces))
            record = {"input": shown(path), "faces": None if faces is None else len(faces), "notes": notes}
            if to_stdout:
                write_stdout(results[0])  # one picture: pasted back, --crop of one face, or an aligned input
                err.print(f"{shown(path)} -> -{_notes_suffix(notes)}", highlight=False)
                records.append({**record, "outputs": ["-"]})
                continue
            written = []
            for index, result in enumerate(results):
                dest = target if len(results) == 1 else target.with_name(f"{target.stem}.face{index}{target.suffix}")
                n = 1
                while dest in written_in_run:
                    dest = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
                    n += 1
                written_in_run.add(dest)
                written.append(write_image(dest, result, protect=inputs))
            records.append({**record, "outputs": [str(w) for w in written]})
            if not quiet:
                out.print(f"{shown(path)} -> {', '.join(map(str, written))}{_notes_suffix(notes)}", highlight=False)
        except FacetoolError as error:
            if len(inputs) == 1:
                raise
            failures.append(str(error))
            records.append({"input": shown(path), "error": str(error)})
            err.print(f"skipped: {error}", highlight=False)
    return records, failures
