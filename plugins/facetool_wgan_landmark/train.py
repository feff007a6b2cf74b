"""WGAN-GP training with the landmark loss, three variants on one budget (issue 8's Table I):

``plain``   WGAN-GP: critic loss D(fake) − D(real) + 10·GP on per-sample interpolates, 5 critic steps per
            generator step, Adam(1e-4, β = (0, 0.9)) — the reference settings.
``loss``    (a), the paper's: + λ‖P(G(z)) − l‖₂ with l the layout of a real training face; G never sees l.
``layout``  (b), ours: G(z, l) also gets l (heatmaps at every block), so the face follows the requested layout.

One engine step is one generator step: its batch of ``n_critic × B`` real faces feeds the critic steps in
``n_critic`` slices of B, and the generator step uses the first slice's layouts. So ``-b`` counts real faces per
generator step (default 5 × 16 = 80). The landmark predictor P (frozen; ``weights/predictor.safetensors`` or
``-T predictor=FILE``, e.g. ``weights/predictor-colour.safetensors``, which reads parts by shape whatever their
colours: card) also reads the layout of faces whose data has none.

``-T critic-layout=true`` (layout variant only) makes the critic conditional: it reads the layout's heatmaps beside
each face, real faces with their own layouts and generated ones with the layout G was asked for, so a face whose
parts miss its layout looks fake to the critic itself, not only to P. Measured at 1000 CPU steps: no better (card).

``-T warp=true`` (layout variant only; off by default, the FID cost it showed by step 2500 is in the card): G draws
in a canonical frame (the runner's default layout) and a similarity warp fitted to the requested layout puts the
face in place, so position, size and tilt are followed exactly.

``-T jitter=J`` (off by default) shifts (± J × side) and zooms (1 ± J) each real face with its layout, so the
critic and G see whole-face layouts off the data's mean — which a user's ``--like`` photo can ask for. Measured
at 1000 CPU steps it did not help (model card).

``-T point-weights=1,1,4,1,1,1`` weighs each layout point's distance in the loss (scaled to mean 1), and ``-T
parts=S`` moves each real face's points on their own by N(0, S²) px and bends the face with them: two tries at a
nose that follows its point (card, "A nose that follows").

Layout error (the loss and the evaluation): mean Euclidean distance between P's points and l, in units of the
image side (so 0.01 = 1.28 px at 128²).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from facetool.generate import LAYOUT_POINTS
from facetool.train.spec import TrainSetup, TrainSpec

if TYPE_CHECKING:
    import torch

VARIANTS = ("plain", "loss", "layout")
Variant = Literal["plain", "loss", "layout"]


@dataclass
class WganTrainOptions:
    """``facetool train wgan-landmark -T key=value``."""

    variant: Variant = field(default="layout", metadata={"help": "plain, loss (paper's a) or layout (ours, b)"})
    # 100, not 10: measured on a step-2504 λ = 10 layout generator, the critic's pull on a face is ~190× the layout
    # error's per unit, so at 10 the layout is a 1/19 voice; at 100 (b) follows it better at no FID cost (card).
    lambda_landmark: float = field(default=100.0, metadata={"help": "weight of the layout error (loss, layout)"})
    lambda_gp: float = field(default=10.0, metadata={"help": "gradient penalty weight"})
    n_critic: int = field(default=5, metadata={"help": "critic steps per generator step"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate (both nets)"})
    beta1: float = field(default=0.0, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.9, metadata={"help": "Adam beta2"})
    z_dim: int = field(default=128, metadata={"help": "noise dimensions"})
    g_base: int = field(default=32, metadata={"help": "generator channels at full size (×2 per halving)"})
    d_base: int = field(default=32, metadata={"help": "critic channels at full size (×2 per halving)"})
    predictor: str = field(default="", metadata={"help": "landmark predictor file (default: the shipped one)"})
    jitter: float = field(default=0.0, metadata={"help": "shift (± this × side) and zoom (1 ± it) real faces"})
    # Off by default until a long run confirms it. The data's parts move little on their own (the nose 2.7 px sd
    # down from where the other points put it); bending real faces so each part moves alone shows G that far more
    # often. Measured (card, "A nose that follows"): the nose followed twice as far 500 steps after a branch.
    parts: float = field(default=0.0, metadata={"help": "move real faces' points on their own (sd, px at 128²)"})
    # Each point's distance counts alike by default, so the nose — one point of six — has a sixth of the loss.
    # Measured (card, "A nose that follows"): the nose weighted 4× for 500 steps followed no further.
    point_weights: str = field(
        default="",
        metadata={
            "help": "relative weights of left eye, right eye, nose, mouth left, mouth right, chin in the "
            "layout loss (loss, layout), e.g. 1,1,4,1,1,1 (scaled to mean 1, so λ keeps its size); empty: alike"
        },
    )
    critic_layout: bool = field(default=False, metadata={"help": "the critic reads the layout too (layout only)"})
    # Off: it follows a layout moved off the data's mean better (error to it 0.54× that to the mean layout at 1000
    # CPU steps, against 0.80× without) but its FID drifts away from plain's (+0.9 % at 1000, +6.5 % at 2000,
    # +12.1 % at 2500, against +0.1 % unwarped at 2000 and 2500), and a raised λ does more for the test layouts (card).
    warp: bool = field(
        default=False,
        metadata={
            "help": "G draws in a canonical frame, warped onto the layout (layout only; plain and loss ignore it)"
        },
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
        for name in ("lambda_landmark", "lambda_gp", "lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be >= 0")
        if self.critic_layout and self.variant != "layout":
            raise ValueError("critic-layout needs variant layout (the other variants have no layout to give it)")
        if not 0 <= self.jitter <= 0.3:
            raise ValueError("jitter must be 0 to 0.3")
        if not 0 <= self.parts <= 8:
            raise ValueError("parts must be 0 to 8 px")
        if not 1 <= self.n_critic <= 20 or not 1 <= self.z_dim <= 1024:
            raise ValueError("n-critic must be 1 to 20 and z-dim 1 to 1024")
        if not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ValueError("beta1 and beta2 must be in [0, 1)")
        if self.point_weights:
            self.layout_weights()  # refuses a bad list when the options are read, not at the first step

    def layout_weights(self) -> tuple[float, ...] | None:
        """``point_weights`` as one weight per :data:`LAYOUT_POINTS`, scaled to mean 1 (None: alike)."""
        if not self.point_weights:
            return None
        try:
            weights = [float(w) for w in self.point_weights.split(",")]
        except ValueError:
            weights = []
        valid = all(math.isfinite(w) and w >= 0 for w in weights) and any(weights)
        if len(weights) != len(LAYOUT_POINTS) or not valid:
            raise ValueError(f"point-weights must be {len(LAYOUT_POINTS)} numbers >= 0, not all 0, e.g. 1,1,4,1,1,1")
        mean = sum(weights) / len(weights)
        return tuple(w / mean for w in weights)


def layout_points(labels: Mapping[str, Any], size: int) -> list[list[float]] | None:
    """A data item's labels -> its :data:`LAYOUT_POINTS` in pixels at ``size`` (None when any is missing).

    Cartoon labels (``facetool data cartoons``) hold ``points`` {name: [x, y]} at ``labels["size"]``."""
    points = (labels or {}).get("points")
    if not isinstance(points, Mapping) or not all(name in points for name in LAYOUT_POINTS):
        return None
    scale = size / float(labels.get("size") or size)
    return [[(points[n][0] + 0.5) * scale - 0.5, (points[n][1] + 0.5) * scale - 0.5] for n in LAYOUT_POINTS]


def canonical_layout() -> tuple[tuple[float, float], ...]:
    """The layout a warping generator draws in (units of the side): the runner's default, near the data's mean."""
    from . import DEFAULT_LAYOUT

    return tuple(DEFAULT_LAYOUT[name] for name in LAYOUT_POINTS)


def mirror_layout(points: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 6, 2) layouts of mirrored images: x -> S - 1 - x, left / right points swapped."""
    mirrored = points.clone()
    mirrored[..., 0] = size - 1 - mirrored[..., 0]
    return mirrored[:, [1, 0, 2, 4, 3, 5]]


def layout_error(
    predicted: torch.Tensor, target: torch.Tensor, size: int, weights: tuple[float, ...] | None = None
) -> torch.Tensor:
    """(B, K, 2) vs (B, K, 2) pixels -> (B,) mean point distance in units of the image side (``weights``: K
    per-point factors of mean 1, for the loss; the evaluation counts every point alike)."""
    distances = (predicted - target).norm(dim=-1)
    if weights is not None:
        distances = distances * distances.new_tensor(weights)
    return distances.mean(dim=-1) / size


class WganTrainer:
    """Nets ``G`` (exported) and ``D`` (the critic); optimisers ``G`` and ``D``."""

    def __init__(self, setup: TrainSetup) -> None:
        import torch

        from .net import Critic, CriticConfig, LayoutGenerator, LayoutGeneratorConfig

        o = setup.options if setup.options is not None else WganTrainOptions()
        self.setup, self.options = setup, o
        points = len(LAYOUT_POINTS) if o.variant == "layout" else 0
        self.configs: dict[str, Any] = {
            "G": LayoutGeneratorConfig(
                z_dim=o.z_dim,
                size=setup.size,
                base=o.g_base,
                layout_points=points,
                warp=o.warp and bool(points),
                canonical=canonical_layout() if o.warp and points else (),
            ),
            "D": CriticConfig(size=setup.size, base=o.d_base, layout_points=points if o.critic_layout else 0),
        }
        # A resumed run keeps the nets it was saved with (a warp-trained run resumes warped whatever the default).
        self.configs.update({k: v for k, v in setup.saved_configs.items() if k in self.configs})
        self.nets = {"G": LayoutGenerator(self.configs["G"]).to(setup.device),
                     "D": Critic(self.configs["D"]).to(setup.device)}  # fmt: skip
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
            for name, net in self.nets.items()
        }
        self.schedulers: dict[str, Any] = {}
        self.export: tuple[str, ...] = ("G",)
        self._predictor = None

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            from .predictor import load_predictor, shipped_predictor_path

            self._predictor = load_predictor(self.options.predictor or shipped_predictor_path(), self.setup.device)
        return self._predictor

    def _reals(
        self, batch: Mapping[str, Mapping[str, Any]], jitter: float = 0.0, parts: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images in [-1, 1], layouts (B, K, 2) pixels): labelled points where the data has them, else P's; with
        ``parts`` each point moved on its own (sd px at 128²) and the face bent with it; with ``jitter`` each face
        and its layout shifted and zoomed alike."""
        images, layouts = self._labelled(batch)
        if parts > 0:
            from facetool.data.augment import move_parts

            sigma = parts * images.shape[-1] / 128
            images, layouts = move_parts(images, layouts, self.setup.generator, sigma=sigma)
        if jitter > 0:
            from facetool.data.augment import augment

            # No rotation: the data's faces are upright and a tilted face is not what -T jitter is for. The
            # cartoons' backgrounds are plain, so the repeated border reads as more background.
            images, layouts = augment(images, layouts, self.setup.generator, max_rotation=0.0,
                                      scale=(1 - jitter, 1 + jitter), max_shift=jitter)  # fmt: skip
        return images, layouts

    def _labelled(self, batch: Mapping[str, Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from facetool.models.common import to_signed

        stream = batch["face"]
        images = stream["cartoon"]
        size = images.shape[-1]
        found = [layout_points(labels, size) for labels in stream["labels"]]
        if any(p is None for p in found):  # P reads the (possibly mirrored) images themselves
            with torch.no_grad():
                return to_signed(images), self.predictor(images.float())
        layouts = torch.tensor(found, dtype=torch.float32, device=images.device)
        # The engine mirrors some items (and their points5, not the labels' points): mirror their layouts too.
        flipped = torch.tensor([bool(f) for f in stream.get("flipped") or []] or [False] * len(images))
        layouts = torch.where(flipped.to(images.device)[:, None, None], mirror_layout(layouts, size), layouts)
        return to_signed(images), layouts

    def _noise(self, count: int) -> torch.Tensor:
        import torch

        return torch.randn(count, self.options.z_dim, generator=self.setup.generator).to(self.setup.device)

    def train_step(self, batch: Mapping[str, Mapping[str, Any]], step: int) -> dict[str, float]:
        import torch

        from facetool.losses.gan import gradient_penalty
        from facetool.models.common import to_unit

        o, amp, wrap = self.options, self.setup.amp, self.setup.wrap
        G, D = wrap(self.nets["G"]), wrap(self.nets["D"])
        reals, layouts = self._reals(batch, o.jitter, o.parts)
        slices = max(1, min(o.n_critic, len(reals)))
        chunk = len(reals) // slices
        give_layout = o.variant == "layout"
        critic_layout = o.critic_layout and give_layout
        d_losses, penalties = [], []
        for k in range(slices):
            real = reals[k * chunk : (k + 1) * chunk]
            layout = layouts[k * chunk : (k + 1) * chunk]
            with torch.no_grad():
                fake = G(self._noise(len(real)), layout if give_layout else None)
            # Real and fake of a slice share their layouts, so the conditional critic compares like with like.
            critic = (lambda x, layout=layout: D(x, layout)) if critic_layout else D
            self.optimizers["D"].zero_grad(set_to_none=True)
            with amp.autocast():
                wasserstein = critic(fake.float()).mean() - critic(real).mean()
            penalty = gradient_penalty(critic, real.float(), fake.float(), generator=None, weight=o.lambda_gp)
            amp.backward(wasserstein + penalty)
            amp.step(self.optimizers["D"])
            d_losses.append(wasserstein.item())
            penalties.append(penalty.item())

        layout = layouts[:chunk]
        self.nets["D"].requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with amp.autocast():
            fake = G(self._noise(chunk), layout if give_layout else None)
            loss = -(D(fake, layout) if critic_layout else D(fake)).mean()
            losses = {"G_adv": loss.item()}
            if o.variant != "plain" and o.lambda_landmark > 0:
                predicted = self.predictor(to_unit(fake.float()))
                error = layout_error(predicted, layout, fake.shape[-1]).mean()
                weighted = layout_error(predicted, layout, fake.shape[-1], o.layout_weights()).mean()
                loss = loss + o.lambda_landmark * weighted
                losses["layout_error"] = error.item()
        amp.backward(loss)
        amp.step(self.optimizers["G"])
        self.nets["D"].requires_grad_(True)
        return {"D_wasserstein": sum(d_losses) / len(d_losses), "GP": sum(penalties) / len(penalties), **losses}

    def samples(self, batch: Mapping[str, Mapping[str, Any]]) -> list[torch.Tensor]:
        """[real, G(z, its layout)] in [0, 1]; a fixed noise per call so grids compare across steps."""
        import torch

        from facetool.models.common import to_unit

        reals, layouts = self._reals(batch)
        z = torch.randn(len(reals), self.options.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            fake = self.nets["G"](z.to(reals.device), layouts if self.options.variant == "layout" else None)
        return [to_unit(reals), to_unit(fake.float())]


def wgan_train_spec() -> TrainSpec:
    """One stream ``face`` with role ``cartoon`` (``facetool data cartoons``, or Bitmoji through the adapter)."""
    return TrainSpec(
        build=WganTrainer,
        streams=lambda options: {"face": ("cartoon",)},
        options=WganTrainOptions,
        default_steps=4000,
        default_batch_size=80,
    )
