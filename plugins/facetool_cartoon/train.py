"""Training of landmark-guided CartoonGAN: one trainer, four variants (the issue's ablation).

``baseline``  CycleGAN photo <-> cartoon (ResNet-9 generators, 70×70 PatchGANs, LSGAN, cycle L1).
``hair``      + hair-colour label: conditional generators (label at every layer) and label-masked discriminators.
``local``     + approach A: the generators also see the input's landmark heatmaps; landmark consistency
              ‖R(G(x, l)) − l‖ through the frozen fine-tuned regressor R; three local discriminators (eyes, nose,
              mouth) on patches cut with Gaussian masks centred on the landmarks, each with its own optimiser.
``affine``    + approach B: every real cartoon is warped by the least-squares affine that takes its landmarks onto
              the photo's it is paired with; the cartoon discriminator is global and conditional on the photo's
              layout ([landmark heatmaps, cartoon] pairs: real = warped cartoon, fake = G(photo)). ``-T pair=photo``
              pairs with the photo's pixels instead, as first built: that critic can also tell a fake by what it
              keeps of the photo (a real warped cartoon shares only the layout with it), and at equal budget it
              measured worse landmark NME and FID and drew noisier avatars (model card, "Approach B's critic").
              ``-T warp=similarity`` moves the cartoons by rotation, one scale and shift only (the affine between
              two faces' 5 points stretches a cartoon along one axis, 1.23× median); at equal budget it measured no
              better than the affine (model card, "Approach B to 8000 steps"). ``-T lambda-pair=W`` adds an L1
              between G(photo) and the warped cartoon, both shrunk to 1/``pair-scale`` of the side (decided where
              the paper is silent: its B has only the pair critic, which here drew no mouths and a haze of hair —
              model card; the pair is a random cartoon of the asked hair colour, so the L1 is taken on coarse
              shapes, where the warped cartoons agree: skin oval, hair mass, dark eyes and mouth at the layout).
              On the CPU budget it met the landmark goal best (0.58×) but still drew posterised photos (model
              card, "Approach B with a coarse pair L1"): off by default.

Hair labels (decided where the paper is silent): the photo -> cartoon generator is asked for the hair colour of the
cartoon drawn in the same batch (cartoons are balanced over the 4 colours, the photos are not: half are brown), and
the cartoon -> photo one for the photo's own colour when it closes the cycle. So G learns every colour on every
face, which ``--hair`` needs at inference, and the cycle still has the photo's colour to come back to.

Skin tone (not in the paper; ``-T skin=true``): the generators are also told one of 3 skin tones (``net``: a
conditional instance norm) and the critics judge hair colour and skin tone together (one label-mask group per
pair). As with the hair, G is asked for the tone of the cartoon drawn in the same batch, F for the photo's own when
it closes the cycle. Tones: a cartoon's from its ``skin_rgb`` label, else measured like a photo's — on the skin
between the eyes and the mouth, classed by the individual typology angle (:mod:`.skin`). ``-T g-train=skin``
trains only G's new skin modulation (the rest of G frozen): how a shipped net gains the condition without
unlearning what it draws (``--init shipped``; the new parameters start as the identity).

Augmentation as the paper: rotate ±15°, zoom 1.0–1.3, shift ±10 %, landmarks moved with the image (plus the
engine's mirror flips). The engine owns AMP on GPU, checkpoints and sample grids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from facetool.models.options import GanMode, check_gan_training
from facetool.train.spec import TrainSetup, TrainSpec

if TYPE_CHECKING:
    import torch

VARIANTS = ("baseline", "hair", "local", "affine")
Variant = Literal["baseline", "hair", "local", "affine"]
PARTS = ("eyes", "nose", "mouth")
PAIRS = ("photo", "layout")
#: Gaussian mask widths of the three parts, in pixels at 128² (eyes ~30 px apart, mouth ~20 px wide).
PART_SIGMA = {"eyes": 7.0, "nose": 7.0, "mouth": 8.0}


@dataclass
class CartoonTrainOptions:
    """``facetool train cartoon -O key=value``."""

    variant: Variant = field(default="local", metadata={"help": "baseline, hair, local (approach A), affine (B)"})
    lambda_cycle: float = field(default=10.0, metadata={"help": "weight of each cycle L1"})
    lambda_local: float = field(default=1.0, metadata={"help": "weight of each local discriminator's G loss (A)"})
    lambda_landmark: float = field(default=10.0, metadata={"help": "weight of the landmark NME loss (A)"})
    heatmap_sigma: float = field(default=3.0, metadata={"help": "landmark heatmap width, px at 128² (A)"})
    patch: int = field(default=48, metadata={"help": "side of the local discriminators' patches, px at 128² (A)"})
    regressor: str = field(default="", metadata={"help": "landmark regressor file (default: the shipped one)"})
    augment: bool = field(default=True, metadata={"help": "rotate / zoom / shift both domains with their landmarks"})
    edge_cut: float = field(
        default=0.0, metadata={"help": "chance that a photo is cut on some sides and filled there: a tight crop"}
    )
    edge_fill: str = field(
        default="border", metadata={"help": "what fills the cut: border, edge-colour or auto (as -O padding)"}
    )
    pair: str = field(
        default="layout", metadata={"help": "what the affine critic pairs a cartoon with: layout (heatmaps) or photo"}
    )
    warp: str = field(
        default="affine", metadata={"help": "how B moves a cartoon onto the photo's layout: affine or similarity"}
    )
    lambda_pair: float = field(
        default=0.0, metadata={"help": "weight of the coarse L1 between G(photo) and the warped cartoon (B)"}
    )
    pair_scale: int = field(default=4, metadata={"help": "the pair L1 compares images shrunk by this factor (B)"})
    pool_size: int = field(default=50, metadata={"help": "generated images kept for the global discriminators"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_from: float = field(default=0.5, metadata={"help": "fraction of the steps before the linear decay to 0"})
    gan_mode: GanMode = field(default="lsgan", metadata={"help": "adversarial loss"})
    g_base: int = field(default=16, metadata={"help": "generator channels at the first layer (paper: 64)"})
    g_blocks: int = field(default=9, metadata={"help": "residual blocks per generator (ResNet-9)"})
    d_base: int = field(default=32, metadata={"help": "discriminator channels at the first layer (paper: 64)"})
    upsample: str = field(
        default="deconv", metadata={"help": "generator ×2 layers: deconv (transposed conv) or resize (no checkerboard)"}
    )
    skin: bool = field(default=False, metadata={"help": "condition the generators and critics on 3 skin tones"})
    g_train: str = field(
        default="all", metadata={"help": "what of G trains: all, or skin (only its skin modulation; -T skin=true)"}
    )
    skin_lr: float = field(
        default=0.0, metadata={"help": "learning rate of the generators' skin modulation (0: lr; -T skin=true)"}
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
        for name in ("lambda_cycle", "lambda_local", "lambda_landmark", "lambda_pair"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be >= 0")
        if not 0.5 <= self.heatmap_sigma <= 32 or not 8 <= self.patch <= 128:
            raise ValueError("heatmap-sigma must be 0.5 to 32 and patch 8 to 128")
        from . import PADDINGS

        if not 0 <= self.edge_cut <= 1 or self.edge_fill not in PADDINGS:
            raise ValueError("edge-cut must be 0 to 1 and edge-fill border, edge-colour or auto")
        if self.pair not in PAIRS:
            raise ValueError(f"pair must be one of {', '.join(PAIRS)}")
        from .affine import WARPS

        if self.warp not in WARPS:
            raise ValueError(f"warp must be one of {', '.join(WARPS)}")
        if self.lambda_pair and self.variant != "affine":
            raise ValueError("lambda-pair is approach B's (variant affine)")
        if not 1 <= self.pair_scale <= 32:
            raise ValueError("pair-scale must be 1 to 32")
        if not 0 <= self.pool_size <= 10000:
            raise ValueError("pool-size must be 0 to 10000")
        check_gan_training(self.lr, self.beta1, self.decay_from, self.gan_mode)
        if not 1 <= self.g_base <= 256 or not 1 <= self.d_base <= 512 or not 0 <= self.g_blocks <= 32:
            raise ValueError("g-base must be 1 to 256, d-base 1 to 512, g-blocks 0 to 32")
        if self.upsample not in ("deconv", "resize"):  # facetool.nets.layers.UPSAMPLES, named here without torch
            raise ValueError("upsample must be deconv or resize")
        if self.g_train not in ("all", "skin"):
            raise ValueError("g-train must be all or skin")
        if self.skin and not self.uses_hair:
            raise ValueError("skin needs the hair label (variant hair, local or affine)")
        if (self.g_train == "skin" or self.skin_lr) and not self.skin:
            raise ValueError("g-train skin and skin-lr need skin=true")
        if not (math.isfinite(self.skin_lr) and 0 <= self.skin_lr <= 1):
            raise ValueError("skin-lr must be 0 to 1")

    @property
    def uses_hair(self) -> bool:
        return self.variant != "baseline"

    @property
    def uses_landmarks(self) -> bool:
        return self.variant == "local"

    @property
    def pair_channels(self) -> int:
        """Planes the affine critic sees beside the cartoon (0 for the other variants)."""
        return 0 if self.variant != "affine" else 3 if self.pair == "photo" else 5


def hair_indices(labels: list[dict[str, Any]], device: Any) -> torch.Tensor:
    """Items' label dicts -> (B,) hair class indices. The few photos without a measured hair colour (the labeller
    found none: bald, hat) count as brown, the commonest class; their weight in training is negligible."""
    import torch

    from .net import HAIR_COLOURS

    names = [(item or {}).get("hair") for item in labels]
    return torch.tensor([HAIR_COLOURS.index(n) if n in HAIR_COLOURS else 1 for n in names], device=device)


def skin_indices(images: torch.Tensor, points: torch.Tensor, labels: list[dict[str, Any]]) -> torch.Tensor:
    """(B,) skin-tone classes: from an item's ``skin_rgb`` label (a generated cartoon's exact fill), else measured on
    the image (photos, cartoons of an imported set)."""
    import torch

    from .skin import crop_skin_class, rgb_skin_class

    given = [(item or {}).get("skin_rgb") for item in labels]
    classes = torch.zeros(len(images), dtype=torch.long, device=images.device)
    known = [i for i, rgb in enumerate(given) if rgb is not None]
    unknown = [i for i, rgb in enumerate(given) if rgb is None]
    if known:
        rgb = torch.tensor([given[i] for i in known], dtype=torch.float32, device=images.device) / 255
        classes[known] = rgb_skin_class(rgb).to(classes.device)
    if unknown:  # only these are measured: a generated cartoon's label is exact
        classes[unknown] = crop_skin_class(images[unknown].float(), points[unknown].float()).to(classes.device)
    return classes


def part_patches(images: torch.Tensor, points: torch.Tensor, patch: int, scale: float) -> dict[str, torch.Tensor]:
    """The local discriminators' inputs: images (B, C, S, S) times a Gaussian mask on each part, cut to
    (B, C, patch, patch) windows centred on the part (bilinear, differentiable in the image).

    points: (B, 5, 2) pixels (eyes, nose, mouth corners); scale: S / 128 (widths are set at 128²)."""
    import torch
    import torch.nn.functional as F

    from facetool.nets.layers import gaussian_heatmaps

    # In float32 whatever autocast gave (a bf16 generator's output): grid_sample wants its input and grid alike.
    images, points = images.float(), points.float()
    size = images.shape[-1]
    centres = {
        "eyes": points[:, :2],
        "nose": points[:, 2:3],
        "mouth": points[:, 3:5].mean(dim=1, keepdim=True),
    }
    out = {}
    for part, where in centres.items():
        if part == "mouth":  # the mouth's Gaussian runs along the line between the corners
            where = torch.cat([points[:, 3:5], where], dim=1)
        mask = gaussian_heatmaps(where, (size, size), PART_SIGMA[part] * scale).amax(dim=1, keepdim=True)
        centre = centres[part].mean(dim=1)  # (B, 2)
        half = (patch * scale) / size  # window half-width in normalised units
        # affine_grid maps output [-1, 1] to input coordinates: scale by the window, shift to its centre
        theta = torch.zeros(len(images), 2, 3, device=images.device, dtype=images.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = half
        theta[:, :, 2] = (centre + 0.5) / size * 2 - 1
        side = max(8, round(patch * scale))
        grid = F.affine_grid(theta, [len(images), images.shape[1], side, side], align_corners=False)
        out[part] = F.grid_sample(images * mask, grid, align_corners=False, padding_mode="zeros")
    return out


class CartoonTrainer:
    """Nets ``G`` (photo -> cartoon, exported), ``F`` (cartoon -> photo), ``D_cartoon``, ``D_photo`` and, for
    ``local``, ``D_eyes``, ``D_nose``, ``D_mouth``. Optimisers: ``G`` (both generators), ``D`` (both global
    critics), one per local critic."""

    def __init__(self, setup: TrainSetup) -> None:
        import itertools

        import torch

        from facetool.losses.gan import GANLoss, ImagePool
        from facetool.models.common import gan_optimizers
        from facetool.nets.patchgan import PatchGAN, PatchGANConfig

        from .net import (
            HAIR_COLOURS,
            SKIN_TONES,
            ConditionalResnetConfig,
            ConditionalResnetGenerator,
            LabelMaskedPatchGAN,
            LabelMaskedPatchGANConfig,
        )

        o = setup.options if setup.options is not None else CartoonTrainOptions()
        self.setup, self.options = setup, o
        labels = len(HAIR_COLOURS) if o.uses_hair else 0
        extra = 5 if o.uses_landmarks else 0
        self.skins = skins = len(SKIN_TONES) if o.skin else 0

        def generator() -> ConditionalResnetConfig:
            return ConditionalResnetConfig(labels=labels, extra=extra, base=o.g_base, blocks=o.g_blocks,
                                           heatmap_sigma=o.heatmap_sigma, upsample=o.upsample,
                                           skins=skins)  # fmt: skip

        # The baseline's critics get one "label" (every item has it): a plain PatchGAN. With skin tones, one group
        # per (hair, tone) pair: hair * tones + tone.
        critic_labels = max(labels, 1) * max(skins, 1)
        cartoon_in = 3 + o.pair_channels
        self.configs: dict[str, Any] = {
            "G": generator(),
            "F": generator(),
            "D_cartoon": LabelMaskedPatchGANConfig(in_channels=cartoon_in, labels=critic_labels, base=o.d_base),
            "D_photo": LabelMaskedPatchGANConfig(in_channels=3, labels=critic_labels, base=o.d_base),
        }
        if o.uses_landmarks:
            for part in PARTS:  # 48² patches: two stride-2 layers give a 10×10 patch verdict
                self.configs[f"D_{part}"] = PatchGANConfig(in_channels=3, base=o.d_base, layers=2, norm="instance")
        device = setup.device
        self.nets = {}
        for name, config in self.configs.items():
            if isinstance(config, ConditionalResnetConfig):
                self.nets[name] = ConditionalResnetGenerator(config).to(device)
            elif isinstance(config, LabelMaskedPatchGANConfig):
                self.nets[name] = LabelMaskedPatchGAN(config).to(device)
            else:
                self.nets[name] = PatchGAN(config).to(device)
        if o.g_train == "skin":  # only the skin modulation of G learns; F learns whole (it starts fresh anyway)
            for pname, param in self.nets["G"].named_parameters():
                param.requires_grad_(".skin." in pname)
        named = [(n, p) for net in ("G", "F") for n, p in self.nets[net].named_parameters() if p.requires_grad]
        generators: Any = [p for _, p in named]
        if skins:  # the new zero-started modulation may learn faster than the rest (-T skin-lr); one group without
            generators = [{"params": [p for n, p in named if ".skin." in n], "lr": o.skin_lr or o.lr},
                          {"params": [p for n, p in named if ".skin." not in n]}]  # fmt: skip
        params: dict[str, Any] = {
            "G": generators,
            "D": itertools.chain(self.nets["D_cartoon"].parameters(), self.nets["D_photo"].parameters()),
        }
        for part in PARTS if o.uses_landmarks else ():
            params[f"D_{part}"] = self.nets[f"D_{part}"]
        self.optimizers, self.schedulers = gan_optimizers(params, o.lr, o.beta1, setup.steps, o.decay_from)
        self.export: tuple[str, ...] = ("G",)
        self.gan = GANLoss(o.gan_mode)
        self.pools = {k: ImagePool(o.pool_size, generator=setup.generator) for k in ("cartoon", "photo")}
        self.regressor = None
        if o.uses_landmarks:
            from .landmarks import load_regressor, shipped_regressor_path

            self.regressor = load_regressor(o.regressor or shipped_regressor_path(), device)
        self._dtype = torch.float32

    # ------------------------------------------------------------------------------------------------ inputs

    def _inputs(self, batch: Mapping[str, Mapping[str, Any]], augment: bool) -> dict[str, Any]:
        import torch

        from facetool.models.common import to_signed

        o, scale = self.options, self.setup.size / 128
        photo, cartoon = batch["photo"], batch["cartoon"]
        x, lx = photo["photo"], self._points(photo, "photo")
        y, ly = cartoon["cartoon"], self._points(cartoon, "cartoon")
        if augment and o.augment:
            from facetool.data.augment import augment as jitter

            g = self.setup.generator
            x, lx = jitter(x, lx, g)
            y, ly = jitter(y, ly, g)
            if o.edge_cut:  # a face cropped tight reaches G filled as the runner's -O padding fills it
                from facetool.data.augment import cut_edges

                x = cut_edges(x, g, chance=o.edge_cut, fill=o.edge_fill)
        n = min(len(x), len(y))  # the two streams' batches are the same size unless one folder is tiny
        x, lx, y, ly = x[:n], lx[:n], y[:n], ly[:n]
        device = x.device
        if o.uses_hair:
            cx = hair_indices(photo["labels"][:n], device)
            cy = hair_indices(cartoon["labels"][:n], device)
        else:
            cx = cy = torch.zeros(n, dtype=torch.long, device=device)
        sx = sy = None
        if self.skins:
            sx = skin_indices(x, lx, photo["labels"][:n])
            sy = skin_indices(y, ly, cartoon["labels"][:n])
        out = {"x": to_signed(x), "y": to_signed(y), "lx": lx, "ly": ly, "cx": cx, "cy": cy, "hx": None, "hy": None,
               "sx": sx, "sy": sy}  # fmt: skip
        size, sigma = (x.shape[-2], x.shape[-1]), o.heatmap_sigma * scale
        if o.uses_landmarks:
            from facetool.nets.layers import gaussian_heatmaps

            out["hx"] = gaussian_heatmaps(lx, size, sigma)
            out["hy"] = gaussian_heatmaps(ly, size, sigma)
        if o.variant == "affine":
            from facetool.nets.layers import gaussian_heatmaps

            from .affine import warp_to_layout

            out["y_on_x"] = warp_to_layout(out["y"], ly, lx, o.warp)[0]
            # the layout's heatmaps in [-1, 1], the images' range
            out["pair"] = out["x"] if o.pair == "photo" else gaussian_heatmaps(lx, size, sigma) * 2 - 1
        return out

    def _points(self, stream: Mapping[str, Any], role: str) -> torch.Tensor:
        """The items' 5 points; where a folder has none (Cartoon Set: no landmarks) the regressor reads them —
        it was fine-tuned for exactly that: real, cartoon and generated faces."""
        import torch

        image = stream[role]
        if isinstance(stream.get("points5"), torch.Tensor):
            return stream["points5"].to(image.device)
        if self.regressor is None:
            from .landmarks import load_regressor, shipped_regressor_path

            self.regressor = load_regressor(self.options.regressor or shipped_regressor_path(), self.setup.device)
        with torch.no_grad():
            return self.regressor(image.float())

    def _landmark_loss(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        from facetool.models.common import to_unit

        from .landmarks import interocular_nme

        return interocular_nme(self.regressor(to_unit(image.float())), points).mean()

    # ------------------------------------------------------------------------------------------------- step

    def train_step(self, batch: Mapping[str, Mapping[str, Any]], step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F_

        o, amp, wrap = self.options, self.setup.amp, self.setup.wrap
        G, F = wrap(self.nets["G"]), wrap(self.nets["F"])
        D_cartoon, D_photo = wrap(self.nets["D_cartoon"]), wrap(self.nets["D_photo"])
        v = self._inputs(batch, augment=True)
        x, y, cx, cy, hx, hy, sx, sy = (v[k] for k in ("x", "y", "cx", "cy", "hx", "hy", "sx", "sy"))
        # the critics' labels: hair colour, or (hair, skin tone) pairs
        kx, ky = (cx, cy) if sx is None else (cx * self.skins + sx, cy * self.skins + sy)
        critics = [n for n in self.nets if n.startswith("D_")]
        scale = self.setup.size / 128

        pair = v.get("pair")  # the affine critic's condition: the photo or its layout

        def judge_cartoon(image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return D_cartoon(torch.cat([pair, image], 1) if pair is not None else image, labels)

        for name in critics:
            self.nets[name].requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses: dict[str, float] = {}
        with amp.autocast():
            fake_y = G(x, cy, hx, sy)  # x drawn as a cartoon with the paired cartoon's hair colour (and skin tone)
            fake_x = F(y, cy, hy, sy)  # y as a photo with its own hair colour
            rec_x = F(fake_y, cx, hx, sx)
            rec_y = G(fake_x, cy, hy, sy)
            gan_y = self.gan.g_loss(judge_cartoon(fake_y, ky))
            gan_x = self.gan.g_loss(D_photo(fake_x, ky))
            cycle = F_.l1_loss(rec_x.float(), x.float()) + F_.l1_loss(rec_y.float(), y.float())
            loss = gan_y + gan_x + o.lambda_cycle * cycle
            if o.uses_landmarks:
                landmark = self._landmark_loss(fake_y, v["lx"]) + self._landmark_loss(fake_x, v["ly"])
                fake_parts = part_patches(fake_y, v["lx"], o.patch, scale)
                local = sum(self.gan.g_loss(wrap(self.nets[f"D_{p}"])(fake_parts[p])) for p in PARTS)
                loss = loss + o.lambda_landmark * landmark + o.lambda_local * local
                losses |= {"landmark": landmark.item(), "local": local.item()}
            if o.lambda_pair:
                shrink = max(1, round(o.pair_scale * scale))
                coarse = F_.l1_loss(F_.avg_pool2d(fake_y.float(), shrink), F_.avg_pool2d(v["y_on_x"].float(), shrink))
                loss = loss + o.lambda_pair * coarse
                losses["pair_l1"] = coarse.item()
        amp.backward(loss)
        amp.step(self.optimizers["G"])
        for name in critics:
            self.nets[name].requires_grad_(True)

        # Global critics on real vs pooled fakes; a fake travels through the pool with its label (and, for the
        # affine variant's pair critic, the condition it was made for) as extra planes.
        self.optimizers["D"].zero_grad(set_to_none=True)
        label_plane = ky.to(fake_y.dtype)[:, None, None, None].expand(-1, 1, *fake_y.shape[-2:])
        kept = pair if pair is not None else x  # the photo for the other variants too: the pool's saved layout
        k = kept.shape[1]
        pooled_y = self.pools["cartoon"].query(torch.cat([fake_y.float(), kept.float(), label_plane.float()], 1))
        pooled_x = self.pools["photo"].query(torch.cat([fake_x.float(), label_plane.float()], 1))
        with amp.autocast():
            py, p_pair, pc = pooled_y[:, :3], pooled_y[:, 3 : 3 + k], pooled_y[:, 3 + k, 0, 0].round().long()
            if pair is not None:
                real_y = D_cartoon(torch.cat([pair, v["y_on_x"]], 1), ky)
                fake_y_logits = D_cartoon(torch.cat([p_pair, py], 1), pc)
            else:
                real_y, fake_y_logits = D_cartoon(y, ky), D_cartoon(py, pc)
            d_cartoon = self.gan.d_loss(real_y, fake_y_logits)
            d_photo = self.gan.d_loss(D_photo(x, kx), D_photo(pooled_x[:, :3], pooled_x[:, 3, 0, 0].round().long()))
        amp.backward(d_cartoon + d_photo)
        amp.step(self.optimizers["D"])
        losses |= {"D_cartoon": d_cartoon.item(), "D_photo": d_photo.item()}

        if o.uses_landmarks:  # each local critic on its own: real cartoon parts vs the fake's parts at x's layout
            real_parts = part_patches(y, v["ly"], o.patch, scale)
            fake_parts = part_patches(fake_y.detach(), v["lx"], o.patch, scale)
            for part in PARTS:
                self.optimizers[f"D_{part}"].zero_grad(set_to_none=True)
                with amp.autocast():
                    net = wrap(self.nets[f"D_{part}"])
                    d_local = self.gan.d_loss(net(real_parts[part]), net(fake_parts[part]))
                amp.backward(d_local)
                amp.step(self.optimizers[f"D_{part}"])
                losses[f"D_{part}"] = d_local.item()

        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"G_cartoon": gan_y.item(), "G_photo": gan_x.item(), "cycle": cycle.item(), **losses}

    def samples(self, batch: Mapping[str, Mapping[str, Any]]) -> list[torch.Tensor]:
        """[photo, G(photo) with the cartoon's hair (and tone), F(G(photo)), cartoon, F(cartoon)] in [0, 1]."""
        import torch

        from facetool.models.common import to_unit

        v = self._inputs(batch, augment=False)
        with torch.no_grad():
            fake_y = self.nets["G"](v["x"], v["cy"], v["hx"], v["sy"]).float()
            rec_x = self.nets["F"](fake_y, v["cx"], v["hx"], v["sx"]).float()
            fake_x = self.nets["F"](v["y"], v["cy"], v["hy"], v["sy"]).float()
        return [to_unit(t) for t in (v["x"], fake_y, rec_x, v["y"], fake_x)]

    def extra_state(self) -> dict[str, torch.Tensor]:
        from facetool.losses.gan import pools_state

        return pools_state(self.pools)

    def load_extra_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        from facetool.losses.gan import load_pools_state

        load_pools_state(self.pools, tensors, self.setup.device)


def cartoon_train_spec() -> TrainSpec:
    """Streams ``photo`` (aligned photo crops with hair labels: ``facetool data crops``) and ``cartoon``
    (``facetool data cartoons`` or an adapted real set): ``--data PHOTO_CROPS --data CARTOONS``."""
    return TrainSpec(
        build=CartoonTrainer,
        streams=lambda options: {"photo": ("photo",), "cartoon": ("cartoon",)},
        options=CartoonTrainOptions,
        default_steps=1500,
        default_batch_size=1,
    )
