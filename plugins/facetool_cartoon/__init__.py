"""facetool plugin: landmark-guided CartoonGAN — photo -> cartoon avatar by a CycleGAN whose generator is told the
hair colour (one-hot at every layer, label-masked critics) and keeps the face's layout: approach A (landmark
heatmaps in, a landmark-consistency loss through a fine-tuned regressor, three local critics) or approach B
(cartoons warped onto the photo's landmarks by least-squares affines, a critic of cartoons paired with the layout).
Nets trained with ``-T skin=true`` are told a skin tone too (not in the paper).

:mod:`.net` nets, :mod:`.train` the trainer and its four variants, :mod:`.landmarks` the regressor, :mod:`.affine`
approach B's alignment, :mod:`.evaluation` the measured scores, :mod:`.hair` the hair colour of photos and avatars,
:mod:`.skin` their skin tone. ``facetool stylize photo.jpg --method cartoon [--hair auto|black|brown|blonde|grey]
[--skin auto|light|medium|dark|0..2] [--variant local|affine]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetool import hookimpl
from facetool.methods import MethodSpec

METHOD = "cartoon"
HAIR_CHOICES = ("auto", "black", "brown", "blonde", "grey")
SKIN_CHOICES = ("auto", "light", "medium", "dark")  # "auto" then net.SKIN_TONES
VARIANT_CHOICES = ("local", "affine", "hair", "baseline")
# What fills a crop where it reaches past the photo (a face cropped tight): ``border`` repeats the photo's edge
# (streaks of skin and hair across the avatar there: a cross-shaped head on a photo cut to the face),
# ``edge-colour`` one plain colour (a round head before a background, but a little worse NME and FID), ``auto`` the
# first for crops at least half inside the photo — every training crop is — the second for the rest (card, "Tight
# crops").
PADDINGS = ("auto", "border", "edge-colour")
BACKDROPS = ("plain", "drawn")
# A 3×3 median over the avatar: it removes the deconv nets' 2-px checkerboard and specks, keeps flat areas and lines
# (shipped net, test crops: checkerboard 0.72 -> 0.31, grain 0.0132 -> 0.0047, FID 281.5 -> 277.2; card).
CLEANS = ("median", "flat", "none")
# -O isolate (.isolate): auto blurs the backdrop of group photos' crops only (card, "The person alone").
ISOLATES = ("auto", "blur", "none")
WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass
class CartoonRunOptions:
    """``facetool stylize --method cartoon -O key=value`` (``--hair`` / ``--skin`` / ``--variant`` set the same)."""

    hair: str = field(
        default="auto",
        metadata={
            "help": "auto (the photo's), black, brown, blonde or grey; or one per face, comma-separated, face0 (the "
            "largest) first: auto,black"
        },
    )
    skin: str = field(
        default="auto",
        metadata={
            "help": "auto (the photo's), light, medium, dark, or a number between: 0 light to 2 dark (weights "
            "trained with skin tones only); or one per face, comma-separated, as --hair"
        },
    )
    variant: str = field(
        default="local",
        metadata={"help": "shipped weights: local (approach A), affine (B); hair, baseline (the ablation)"},
    )
    padding: str = field(
        default="auto",
        metadata={
            "help": "what fills a crop past the photo's edge (a face cropped tight): border (the edge repeated), "
            "edge-colour (one plain colour) or auto (edge-colour when less than half the crop is in the photo)"
        },
    )
    backdrop: str = field(
        default="plain",
        metadata={
            "help": "stylize: plain (the avatar's own background painted one colour) or drawn (as the net drew it, "
            "speckled); not what a result is pasted onto (--background)"
        },
    )
    clean: str = field(
        default="median",
        metadata={
            "help": "median (the avatar's checkerboard and specks removed by a 3×3 median), flat (painted in a few "
            "flat colours, as a cartoon is) or none (as drawn)"
        },
    )
    isolate: str = field(
        default="auto",
        metadata={
            "help": "blur everything but the person (other people, objects, the background) before drawing, so it "
            "is not drawn as blobs around the head: auto (when the photo has more than one face), blur or none"
        },
    )
    cartoons: str = field(default="", metadata={"help": "facetool evaluate only: held-out cartoon folder for FID"})
    tight: float = field(
        default=0.0,
        metadata={
            "help": "facetool evaluate only: cut each photo's four sides by this fraction, filled as -O padding "
            "says (what a photo cropped tight to the face gives)"
        },
    )
    crowd: float = field(
        default=0.0,
        metadata={
            "help": "facetool evaluate only: put a slice of two other photos' faces this fraction of the side wide "
            "at each photo's left and right edge (the neighbours a crop of a group photo holds)"
        },
    )
    grey: bool = field(
        default=False,
        metadata={
            "help": "facetool evaluate only: draw from the photos made black-and-white (luma); the hair and skin "
            "they are scored against stay the colour photos'"
        },
    )

    def __post_init__(self) -> None:
        if any(entry not in HAIR_CHOICES for entry in self.hair.split(",")):
            raise ValueError(f"hair must be one of {', '.join(HAIR_CHOICES)} (or one per face, comma-separated)")
        if any(entry not in SKIN_CHOICES and not _tone_number(entry) for entry in self.skin.split(",")):
            raise ValueError(f"skin must be one of {', '.join(SKIN_CHOICES)}, or a number from 0 (light) to 2 (dark) "
                             "(or one per face, comma-separated)")  # fmt: skip
        if self.variant not in VARIANT_CHOICES:
            raise ValueError(f"variant must be one of {', '.join(VARIANT_CHOICES)}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}")
        if self.backdrop not in BACKDROPS:
            raise ValueError(f"backdrop must be one of {', '.join(BACKDROPS)}")
        if self.isolate not in ISOLATES:
            raise ValueError(f"isolate must be one of {', '.join(ISOLATES)}")
        if self.clean not in CLEANS:
            raise ValueError(f"clean must be one of {', '.join(CLEANS)}")
        if not 0 <= self.tight < 0.5 or not 0 <= self.crowd < 0.5:
            raise ValueError("tight and crowd must be 0 to below 0.5")


def _tone_number(text: str) -> bool:
    """Whether ``text`` is a tone position, 0 (light) to 2 (dark)."""
    try:
        return 0 <= float(text) <= 2
    except ValueError:
        return False


def variant_weights(variant: str) -> Path:
    return WEIGHTS_DIR / f"cartoon-{variant}.safetensors"


def _generator(weights: Path | None) -> Any:
    from facetool.errors import FacetoolError
    from facetool.models.common import load_trained_net

    from .net import ConditionalResnetConfig, ConditionalResnetGenerator

    if weights is None or not Path(weights).exists():
        raise FacetoolError(f"method {METHOD}: no weights at {weights} (train some: facetool train cartoon)")
    return load_trained_net(weights, "G", method=METHOD, build=ConditionalResnetGenerator,
                            config_type=ConditionalResnetConfig)  # fmt: skip


def _resolve(options: CartoonRunOptions, weights: Path | None) -> Path:
    """``--weights`` wins; without it ``-O variant`` picks the shipped file of that variant."""
    from facetool.errors import FacetoolError, UsageError

    if weights is None or Path(weights).resolve() == variant_weights("local").resolve():
        chosen = variant_weights(options.variant)
        if not chosen.is_file():
            raise FacetoolError(f"method {METHOD}: no {options.variant} weights ship yet; train them (facetool train "
                                f"cartoon, see the README) and pass --weights RUN")  # fmt: skip
        return chosen
    if options.variant != "local":
        raise UsageError("-O variant / --variant picks among the shipped weights; --weights already names one")
    return weights


def _skinned(generator: Any, options: CartoonRunOptions) -> Any:
    """The generator, after checking that it takes ``-O skin`` when one is named."""
    from facetool.errors import UsageError

    if set(options.skin.split(",")) != {"auto"} and not generator.config.skins:
        raise UsageError(f"--skin {options.skin}: these weights were trained without skin tones (-T skin=true)")
    return generator


def _load(options: CartoonRunOptions | None, device: str, weights: Path | None) -> Any:
    from .runner import CartoonRunner

    options = options or CartoonRunOptions()
    generator = _skinned(_generator(_resolve(options, weights)), options)
    return CartoonRunner(generator, device, options.hair, options.padding, plain_backdrop=options.backdrop == "plain",
                         clean=options.clean, skin=options.skin, isolate=options.isolate)  # fmt: skip


def _network(options: CartoonRunOptions | None, weights: Path | None) -> Any:
    from facetool.errors import UsageError

    from .runner import FixedConditionCartoon

    options = options or CartoonRunOptions()
    if "," in options.hair or "," in options.skin:
        raise UsageError("-O hair / skin: the exported net draws one fixed colour and tone, not one per face")
    hair = "brown" if options.hair == "auto" else options.hair
    generator = _skinned(_generator(_resolve(options, weights)), options)
    return FixedConditionCartoon(generator, hair, options.padding, options.clean, options.skin,
                                 options.isolate).eval()  # fmt: skip


def _measure(net: Any, request: Any) -> Any:
    from .evaluation import measure

    return measure(net, request)


@hookimpl
def register_generators(register):
    from .train import cartoon_train_spec

    register(
        MethodSpec(
            name=METHOD,
            task="stylize",
            load=_load,
            options=CartoonRunOptions,
            description="Landmark-guided CartoonGAN: photo -> cartoon avatar, hair colour chosen or measured",
            template="avatar",
            input_size=128,
            sizes=(128,),
            # Approach A ships (weights/MODEL_CARD.md); -O variant picks weights/cartoon-<variant>.safetensors.
            weights="facetool_cartoon:weights/cartoon-local.safetensors",
            background="photo",
            assets=("mtcnn-onet",),
            version="1",
            train=cartoon_train_spec(),
            network=_network,
            measure=_measure,
        )
    )


@hookimpl
def register_commands(app):
    from .commands import register

    register(app)
