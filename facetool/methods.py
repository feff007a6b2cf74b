"""Method (generator) specs: what a plugin registers through ``register_generators``.

A method declares its task, a typed options schema the CLI validates, its preprocessing (alignment template and
input size) and where its default weights are. The core runs every task's pipeline (detect, align, run, paste
back, write) so a plugin only supplies the network part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .errors import FacetoolError, PluginError, UsageError

TASKS = ("stylize", "generate", "reconstruct")
Task = Literal["stylize", "generate", "reconstruct"]


class StylizeRunner(Protocol):
    def __call__(self, crops: Any) -> Any:
        """crops: (B, 3, S, S) float RGB in [0, 1], aligned to the method's template.
        Returns (B, C, S, S) float in [0, 1] with C = 1 (drawing) or 3."""
        ...


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: what ``--method`` takes.
        task: ``stylize`` (image -> image), ``generate`` (conditions -> image), ``reconstruct`` (image -> maps -> mesh).
        load: ``load(options, device, weights) -> runner``; ``weights`` is the resolved weights path (or None);
            for ``stylize`` the runner follows :class:`StylizeRunner`.
        description: one line.
        options: dataclass of the method's settings (``-O key=value``), or None.
        template: alignment template name (see :mod:`facetool.align`).
        input_size: crop size the network expects by default.
        sizes: crop sizes the method supports (``--size``).
        weights: the default weights: an asset name, or ``package:relative/path`` inside an installed package;
            None = the method has no weights.
        background: what ``stylize`` pastes onto by default: ``photo`` or ``white`` (drawings look wrong over a photo).
            A loaded runner's ``background`` attribute, when set, overrides it (an option that draws lines alone).
        assets: assets needed besides the weights.
        version: the method's own version (stored in checkpoints and metrics).
        priority: the highest-priority method of a task is that task's default ``--method``.
        train: how the method trains (:class:`facetool.train.spec.TrainSpec`), or None (not trainable here).
        network: ``network(options, weights) -> nn.Module`` the bare inference net on CPU, fp32, eval mode (for
            ``facetool export`` and benchmarks); for ``stylize``: (B, 3, S, S) [0, 1] -> (B, C, S, S) [0, 1].
        evaluate: ``evaluate(outputs, batch, options) -> {metric: [per-item values]}``: the method's own metrics
            for ``facetool evaluate`` (outputs (B, C, S, S) in [0, 1]; batch as the dataset gives it).
        roles: ``roles(options, train_options) -> (input role, target role)`` of the network for ``facetool
            evaluate``, when its options can change them (CycleGAN's direction); None: the first role of the first
            training stream -> the last role of the last.
        measure: ``measure(net, request) -> Measured`` (:mod:`facetool.evaluate`): for a method whose output is
            not one image (a reconstruction's maps), its whole measurement in place of the image metrics; ``net`` is
            ``network(...)`` on the request's device, or None for ``--oracle`` (score the targets themselves).
    """

    name: str
    task: Task
    load: Callable[[Any, str, Path | None], Any]
    description: str
    options: type | None = None
    template: str = "portrait"
    input_size: int = 256
    sizes: tuple[int, ...] = (256,)
    weights: str | None = None
    background: Literal["photo", "white"] = "photo"
    assets: tuple[str, ...] = ()
    version: str = "0"
    priority: int = 0
    train: Any = None
    network: Callable[[Any, Path | None], Any] | None = None
    evaluate: Callable[..., dict[str, list[float]]] | None = None
    roles: Callable[[Any, Any], tuple[str, str]] | None = None
    measure: Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        # Checked here, so a plugin's slip is reported against the plugin when it registers, not later as a
        # usage error the user did not make ("--size 300: method runs at 128" with no --size given).
        import dataclasses

        def bad(why: str) -> ValueError:
            return ValueError(f"method {self.name}: {why}")

        if self.task not in TASKS:
            raise bad(f"task must be one of {TASKS}, not {self.task!r}")
        if not self.sizes or not all(isinstance(n, int) and n > 0 for n in self.sizes):
            raise bad(f"sizes must be positive ints, not {self.sizes!r}")
        if self.input_size not in self.sizes:
            raise bad(f"input_size {self.input_size} is not one of its sizes {tuple(self.sizes)}")
        if self.background not in ("photo", "white"):
            raise bad(f"background must be 'photo' or 'white', not {self.background!r}")
        if self.options is not None and not (isinstance(self.options, type) and dataclasses.is_dataclass(self.options)):
            raise bad(f"options must be a dataclass (or None), not {self.options!r}")
        if not callable(self.load):
            raise bad("load must be callable: load(options, device, weights) -> runner")


def resolve_weights(spec: MethodSpec, override: str | Path | None = None) -> Path | None:
    """The weights file a method should load: ``--weights`` if given, else its default (asset or package file)."""
    if override is not None:
        path = Path(override).expanduser()
        if not path.exists():
            raise UsageError(f"--weights {override}: no such file or folder")
        return path
    if spec.weights is None:
        return None
    package, sep, relative = spec.weights.partition(":")
    if sep:
        from importlib import resources

        try:
            path = Path(str(resources.files(package).joinpath(relative)))
        except ModuleNotFoundError:
            path = None
        if path is None or not path.exists():
            raise FacetoolError(f"method {spec.name}: its default weights {spec.weights} are missing from the install")
        return path
    from .assets import asset_path
    from .errors import UnknownAssetError

    try:
        return asset_path(spec.weights)
    except UnknownAssetError:  # the plugin names an asset nobody registered: not the user's doing
        raise PluginError(f"method {spec.name}: its default weights name the asset {spec.weights!r}, which no "
                          "plugin registers (a fault of the method's plugin)") from None  # fmt: skip


def checked_images(result: Any, batch: int, size: int | None, method: str = "") -> Any:
    """A runner's images, or PluginError saying how they break the contract: a (B, 1 or 3, S, S) float tensor in
    [0, 1] (``size`` None: any square). Unchecked, a 0-255 result pastes white squares, a NaN one black squares."""
    import torch

    who = f"method {method}" if method else "the method"
    side = "S" if size is None else size
    want = f"expected a ({batch}, 1 or 3, {side}, {side}) tensor in [0, 1]"
    if not isinstance(result, torch.Tensor):
        raise PluginError(f"{who} returned a {type(result).__name__}; {want}")
    shape = tuple(result.shape)
    square = len(shape) == 4 and shape[2] == shape[3] and (size is None or shape[2] == size)
    if not square or shape[0] != batch or shape[1] not in (1, 3):
        raise PluginError(f"{who} returned a {shape} tensor; {want}")
    if not result.is_floating_point():
        raise PluginError(f"{who} returned {result.dtype} values; {want}")
    low, high = float(result.min()), float(result.max())  # NaN propagates into both
    if not (low >= -0.05 and high <= 1.05):  # a little overshoot is clamped; 0-255 or -1..1 is a bug
        raise PluginError(f"{who} returned values in [{low:.3g}, {high:.3g}]; {want}")
    return result
