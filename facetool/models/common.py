"""What every image-to-image GAN method shares at inference and in its schedule.

:class:`ImageToImage` turns a tanh generator into the stylize contract ((B, 3, S, S) in [0, 1] in, (B, C, S, S) in
[0, 1] out); :func:`build_net` rebuilds a net from the config record a checkpoint or an exported weights file
stores; :func:`load_generator` does both from a path; :func:`linear_decay` is the pix2pix / CycleGAN learning-rate
schedule, counted in optimisation steps so it survives ``--resume`` and any batch size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from facetool.errors import FacetoolError, UsageError

__all__ = [
    "ImageToImage",
    "build_net",
    "linear_decay",
    "load_generator",
    "match_channels",
    "stylize_runner",
    "to_signed",
    "to_unit",
]

#: ITU-R BT.601 luma, the weights the data loader uses to read a colour file as a 1-channel role.
LUMA = (0.299, 0.587, 0.114)


def match_channels(x: Tensor, channels: int) -> Tensor:
    """(B, C, H, W) -> (B, channels, H, W): 3 -> 1 by luma, 1 -> 3 by repeating, equal counts unchanged.

    Luma is linear with weights summing to 1, so it commutes with the [0, 1] <-> [-1, 1] mapping: it works on
    either range.
    """
    have = x.shape[1]
    if have == channels:
        return x
    if have == 3 and channels == 1:
        weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    raise ValueError(f"cannot convert {have} channels to {channels} (only 1 <-> 3)")


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] images -> [-1, 1], the range of the generators' tanh (any shape)."""
    return x * 2.0 - 1.0


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] generator outputs -> [0, 1] images, clamped (any shape)."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


class ImageToImage(nn.Module):
    """A tanh generator as an image-to-image net on [0, 1] images.

    forward: (B, C_in, S, S) in [0, 1] -> (B, C_out, S, S) in [0, 1], where C_in may be 1 or 3 whatever the
    generator takes (3 -> 1 by luma, 1 -> 3 by repeating) and C_out is the generator's own output channels.
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        config = getattr(generator, "config", None)
        self.in_channels = int(getattr(config, "in_channels", 3))
        self.out_channels = int(getattr(config, "out_channels", 3))

    def forward(self, x: Tensor) -> Tensor:
        x = match_channels(x, self.in_channels)
        return to_unit(self.generator(to_signed(x)))


def _net_classes() -> dict[type, type]:
    from facetool.nets.patchgan import PatchGAN, PatchGANConfig
    from facetool.nets.resnet import ResnetConfig, ResnetGenerator
    from facetool.nets.unet import UNet, UNetConfig

    return {UNetConfig: UNet, ResnetConfig: ResnetGenerator, PatchGANConfig: PatchGAN}


def build_net(record: Mapping[str, Any] | Any) -> nn.Module:
    """A fresh net from its config: a record ``{"type": "module:QualName", "values": {...}}`` or the dataclass.

    Knows the core's UNet, ResnetGenerator and PatchGAN configs; FacetoolError for anything else.
    """
    from facetool.train.checkpoint import config_from_record

    config = config_from_record(record) if isinstance(record, Mapping) else record
    net_class = _net_classes().get(type(config))
    if net_class is None:
        raise FacetoolError(f"no facetool net is built from a {type(config).__name__} config")
    return net_class(config)


def net_configs(path: Path) -> tuple[dict[str, Any], str | None]:
    """(net name -> config record, method name) of an exported weights file or a checkpoint / run folder."""
    if path.is_dir():
        from facetool.train.checkpoint import read_state

        state = read_state(path)
        return dict(state.configs), state.method
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except Exception as err:  # safetensors raises its own types for a file that is not one
        raise FacetoolError(f"{path} is not a safetensors weights file") from err
    try:
        configs = json.loads(metadata["configs"]) if "configs" in metadata else {}
    except ValueError as err:
        raise FacetoolError(f"{path}: its metadata 'configs' is not JSON") from err
    return configs, metadata.get("method")


def load_trained_net(
    weights: str | Path,
    net: str = "G",
    method: str | None = None,
    build: Callable[[Any], nn.Module] | None = None,
    config_type: type | None = None,
) -> nn.Module:
    """The net ``net`` of an exported weights file or a run / checkpoint folder, eval mode, CPU, fp32.

    The architecture comes from the config the file stores, so any size loads; ``build(config) -> module`` makes
    nets of a plugin's own config types (default :func:`build_net`: the core's U-Net / ResNet / PatchGAN), and
    ``config_type`` refuses a stored config of another type. ``method``: refuse (UsageError) weights trained by
    another method. FacetoolError, in one line, when the file holds no config for ``net`` or one of the wrong type.
    """
    from facetool.train.checkpoint import config_from_record, load_weights

    path = Path(weights).expanduser()
    if not path.exists():
        raise FacetoolError(f"{path} does not exist")
    configs, trained_by = net_configs(path)
    if method is not None and trained_by is not None and trained_by != method:
        raise UsageError(f"{path} holds weights of method {trained_by}, not {method}")
    if net not in configs:
        held = ", ".join(sorted(configs)) or "none"
        raise FacetoolError(f"{path} has no config for net {net!r} (configs for: {held}); was it exported by facetool?")
    config = config_from_record(configs[net])
    if config_type is not None and not isinstance(config, config_type):
        raise FacetoolError(f"{path}: its {net} is a {type(config).__name__}, not a {config_type.__name__}")
    module = (build or build_net)(config)
    load_weights(path, {net: module})
    return module.float().eval()


def load_generator(weights: str | Path, net: str = "G", method: str | None = None) -> ImageToImage:
    """The generator ``net`` of a weights file or run folder (:func:`load_trained_net`) as an eval-mode
    :class:`ImageToImage` on CPU in fp32 (fp16 files are cast up)."""
    return ImageToImage(load_trained_net(weights, net, method)).float().eval()


def stylize_runner(net: nn.Module, device: str, channels_last: bool = False) -> Callable[..., Tensor]:
    """``runner(crops, **extras)``: (B, 3, S, S) in [0, 1] -> (B, C, S, S) in [0, 1] through ``net`` on ``device``,
    in eval mode and under ``torch.inference_mode``.

    A net that declares ``takes_points5`` / ``takes_points68`` / ``takes_foreground`` (see
    :func:`facetool.stylize.stylize_photo`) gets the runner declare them too, and the ``points5=`` / ``points68=`` /
    ``foreground=`` tensors stylize hands over, on ``device``.

    ``channels_last``: for U-Nets (measured 1.14-1.22× on a 2-core CPU, ``bench/nets_speed.py --methods``); it
    slows the ResNet generators (0.85×), so they stay contiguous. bf16 autocast was over 5× slower on that CPU and
    torch.compile (1.2-1.5×) costs 11-48 s of compiling per process: neither is used.
    """
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device).eval().to(memory_format=layout)

    def run(crops: Tensor, **extras: Tensor | None) -> Tensor:
        with torch.inference_mode():
            x = crops.to(device=device, dtype=torch.float32).contiguous(memory_format=layout)
            extras = {k: None if v is None else v.to(device) for k, v in extras.items()}
            return net(x, **extras).contiguous()

    for flag in ("takes_points5", "takes_points68", "takes_foreground"):
        setattr(run, flag, bool(getattr(net, flag, False)))
    return run


def gan_optimizers(
    params: Mapping[str, Any], lr: float, beta1: float, steps: int, decay_from: float
) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LambdaLR]]:
    """The pix2pix / CycleGAN optimisation: one Adam (``lr``, betas ``(beta1, 0.999)``) per entry of ``params``
    (a net or an iterable of parameters) and its :func:`linear_decay` schedule over ``steps``."""
    optimizers = {
        name: torch.optim.Adam(p.parameters() if isinstance(p, nn.Module) else p, lr=lr, betas=(beta1, 0.999))
        for name, p in params.items()
    }
    return optimizers, {name: linear_decay(opt, steps, decay_from) for name, opt in optimizers.items()}


def linear_decay(
    optimizer: torch.optim.Optimizer, steps: int, decay_from: float = 0.5
) -> torch.optim.lr_scheduler.LambdaLR:
    """pix2pix / CycleGAN schedule on optimisation steps: the base rate for the first ``decay_from * steps``
    steps, then linear down to 0 at ``steps``.

    Step ``s`` (0-based, the scheduler stepped once after each optimisation step) trains at
    ``lr * min(1, (steps - s) / (steps - start))`` with ``start = floor(decay_from * steps)``: the last step
    still moves the weights and the rate is 0 once ``steps`` have run. ``decay_from = 1``: constant.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= decay_from <= 1.0:
        raise ValueError(f"decay_from must be in [0, 1], got {decay_from}")
    start = int(decay_from * steps)

    def factor(step: int) -> float:
        if step <= start or start >= steps:
            return 1.0
        return max(0.0, (steps - step) / (steps - start))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def save_net_with_record(path: str | Path, module: nn.Module, record: Mapping[str, Any],
                         dtype: torch.dtype = torch.float16) -> None:  # fmt: skip
    """A helper net (a regressor, a classifier a method measures with) as safetensors: its state dict, floating
    tensors in ``dtype``, and ``record`` (how it was trained, its held-out scores) as JSON under the metadata key
    ``facetool``; written atomically. :func:`net_record` reads the record back."""
    from safetensors.torch import save

    from facetool.data.common import write_bytes_atomic

    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous()
               for k, v in module.state_dict().items()}  # fmt: skip
    write_bytes_atomic(Path(path), save(tensors, metadata={"facetool": json.dumps(dict(record))}))


def net_record(path: str | Path) -> dict[str, Any]:
    """The record :func:`save_net_with_record` stored ({} when the file has none)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return json.loads((handle.metadata() or {}).get("facetool", "{}"))
