"""Does each part follow its own point? A layout generator asked for a layout with one part moved, read against its
own face bent exactly by that move.

A reader (a layout predictor) sees only part of a move, and how much depends on the part (the card's table
"What the predictors can see"). So the generator's face for the moved layout is not scored against the asked move
but against the same generator's face for the unmoved layout, bent by a thin-plate spline so that exactly that part
moves: ``follow = reader's move on the generated face / reader's move on the bent face``, summed over faces. About
1: the part goes where asked, as far as the reader can tell (it can pass 1, or go below 0). 0: the generator ignores
that point — but with the run-time similarity warp a net that ignores it still scores ~0.1–0.3, what moving one of
the six points does to the similarity (the "ignoring twin", :func:`ignoring_twin`; card).

    python -m facetool_wgan_landmark.follow --data cartoons   # the shipped file and its ignoring twin, seeds 0 and 1
    python -m facetool_wgan_landmark.follow --data cartoons --weights RUN --no-warp --reader OTHER.safetensors

``--reader``: another parts predictor, for a generator trained against the shipped one (``-T predictor``), whose
``follow_*`` that file then does not read independently. ``--no-warp``: the net as trained (no twin to compare).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

Reader = Callable[[Tensor], Tensor]  # (B, 3, S, S) in [0, 1] -> (B, 6, 2) pixels, facetool.generate.LAYOUT_POINTS

#: Each part's test move at 128², px per point (x, y), keyed by index in facetool.generate.LAYOUT_POINTS: 8.4 px
#: wider eyes or mouth, a nose 7.7 px lower (the shipped tests' moved layout asks for 8.4 px wider eyes, 7.7 lower).
PART_MOVES: dict[str, dict[int, tuple[float, float]]] = {
    "eyes": {0: (-4.2, 0.0), 1: (4.2, 0.0)},
    "nose": {2: (0.0, 7.7)},
    "mouth": {3: (-4.2, 0.0), 4: (4.2, 0.0)},
}
#: A reader must see at least this share of an exact move (mean over faces) for the ratio to mean anything: P and
#: the check predictor see about none of a nose moved alone (card), and a ratio over ~0 is noise.
MIN_SEEN = 0.25


def move_part(layouts: Tensor, part: str, size: int) -> Tensor:
    """(B, 6, 2) pixel layouts -> the same with only ``part``'s points moved by :data:`PART_MOVES` (scaled to
    ``size``)."""
    moved = layouts.clone()
    for index, (dx, dy) in PART_MOVES[part].items():
        moved[:, index] += torch.tensor([dx, dy], dtype=layouts.dtype, device=layouts.device) * (size / 128)
    return moved


def part_shift(points: Tensor, base: Tensor, part: str) -> Tensor:
    """(B, 6, 2) read after vs before -> (B,) px each part's points moved along their asked direction (mean)."""
    shifts = []
    for index, (dx, dy) in PART_MOVES[part].items():
        direction = torch.tensor([dx, dy], dtype=points.dtype, device=points.device)
        shifts.append((points[:, index] - base[:, index]) @ (direction / direction.norm()))
    return torch.stack(shifts, 1).mean(1)


def asked_shift(part: str, size: int) -> float:
    """The move :func:`move_part` asks of ``part``, px along its direction (mean over its points)."""
    return sum(torch.tensor(m).norm().item() for m in PART_MOVES[part].values()) / len(PART_MOVES[part]) * size / 128


class FollowMeter:
    """Accumulates, batch by batch, each reader's part moves on generated and on exactly bent faces.

    ``draw(z, layouts) -> (B, 3, S, S)`` in [0, 1] (the same z for both layouts); ``readers``: {key suffix:
    ``reader(images) -> (B, 6, 2)``} — every reader reads the same drawn faces (``{"": a, "_check": b}`` gives
    ``follow_eyes`` by a and ``follow_eyes_check`` by b).
    """

    def __init__(self, draw: Callable[[Tensor, Tensor], Tensor], readers: Mapping[str, Reader], size: int):
        self.draw, self.readers, self.size = draw, dict(readers), size
        self.generated = {(key, part): 0.0 for key in self.readers for part in PART_MOVES}
        self.exact = dict(self.generated)
        self.faces = 0

    def add(self, z: Tensor, layouts: Tensor, faces: Tensor) -> None:
        """``faces``: ``draw(z, layouts)``, already made by the caller."""
        from facetool.data.augment import tps_warp

        base = {key: reader(faces) for key, reader in self.readers.items()}
        for part in PART_MOVES:
            moved = move_part(layouts, part, self.size)
            generated, bent = self.draw(z, moved), tps_warp(faces, layouts, moved)
            for key, reader in self.readers.items():
                self.generated[key, part] += part_shift(reader(generated), base[key], part).sum().item()
                self.exact[key, part] += part_shift(reader(bent), base[key], part).sum().item()
        self.faces += len(faces)

    def result(self) -> dict[str, float | None]:
        """``follow_<part><key>``: generated ÷ exact; None where the reader saw less than :data:`MIN_SEEN` of the
        exact move (it cannot tell)."""
        out: dict[str, float | None] = {}
        for key, part in self.exact:
            seen = self.exact[key, part] / max(self.faces, 1) / asked_shift(part, self.size)
            ratio = self.generated[key, part] / self.exact[key, part] if seen >= MIN_SEEN else None
            out[f"follow_{part}{key}"] = ratio
        return out


def ignoring_twin(generator: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """A warping layout generator's twin that ignores what the similarity leaves: asked for the canonical layout in
    its own frame whatever the layout, then placed by the same similarity warp. ``(z, layouts) -> (B, 3, S, S)``
    in [0, 1]; the reference a warped net's ``follow_*`` is read against."""
    from kornia.geometry.transform import warp_affine

    from facetool.align import umeyama

    c = generator.config
    canonical = torch.tensor(c.canonical) * c.size - 0.5

    def draw(z: Tensor, layouts: Tensor) -> Tensor:
        frame = canonical.to(layouts.device).expand(len(layouts), -1, -1)
        face = generator._draw(z, frame)
        placed = warp_affine(face, umeyama(frame, layouts), (c.size, c.size), padding_mode="border", align_corners=True)
        return ((placed + 1) / 2).clamp(0, 1)

    return draw


def main(argv: list[str] | None = None) -> None:
    from facetool.data.datasets import ManifestDataset
    from facetool.methods import resolve_weights
    from facetool.plugins import get_host

    from . import WganRunOptions, _generator
    from .predictor import load_predictor, parts_check_predictor_path, parts_predictor_path
    from .train import layout_points

    parser = argparse.ArgumentParser(description="follow_* of a warped layout generator and of its ignoring twin")
    parser.add_argument("--data", required=True, help="cartoon folder (facetool data cartoons; its test split)")
    parser.add_argument("--weights", default=None, help="a wgan-landmark run or file (default: the shipped one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--reader", default=None, help="parts predictor file (default: both shipped parts readers)")
    parser.add_argument("--no-warp", action="store_true", help="the net as trained, without the run-time warp")
    args = parser.parse_args(argv)
    weights = args.weights or resolve_weights(get_host().generators.get("wgan-landmark"), None)
    net = _generator(weights, WganRunOptions(warp=not args.no_warp)).eval()
    size = net.config.size
    data = ManifestDataset(args.data, roles=("cartoon",), split="test", size=size)
    layouts = torch.tensor([layout_points(data[i]["labels"], size) for i in range(len(data))], dtype=torch.float32)
    if args.reader:
        readers = {"": load_predictor(args.reader)}
    else:  # both shipped parts readers, as facetool evaluate reads with them
        readers = {"": load_predictor(parts_predictor_path())}
        if parts_check_predictor_path().exists():
            readers["_check"] = load_predictor(parts_check_predictor_path())
    draws = {"net": lambda z, lay: ((net(z, lay) + 1) / 2).clamp(0, 1)}
    if net.config.warp:
        draws["ignoring twin"] = ignoring_twin(net)
    for name, draw in draws.items():
        for seed in args.seeds:
            noise, meter = torch.Generator().manual_seed(seed), FollowMeter(draw, readers, size)
            for start in range(0, len(layouts), 16):  # facetool evaluate's default batches and noise draws
                z = torch.randn(min(16, len(layouts) - start), net.config.z_dim, generator=noise)
                batch = layouts[start : start + len(z)]
                with torch.inference_mode():
                    meter.add(z, batch, draw(z, batch))
            shown = {k: None if v is None else round(v, 3) for k, v in meter.result().items()}
            print(f"{name}, seed {seed}: {shown}")


if __name__ == "__main__":
    main()
