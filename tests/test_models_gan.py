"""pix2pix / CycleGAN trainers, their shared inference pieces and the generic plugin, on tiny random data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facetool.errors import FacetoolError, UsageError
from facetool.models.common import ImageToImage, linear_decay, load_generator, match_channels, stylize_runner
from facetool.models.cyclegan import (
    CycleGANOptions,
    CycleGANRoleOptions,
    CycleGANTrainer,
    cyclegan_train_spec,
    identity_l1,
)
from facetool.models.pix2pix import Pix2PixOptions, Pix2PixRoleOptions, Pix2PixTrainer, pix2pix_train_spec
from facetool.train.checkpoint import TrainState, export_weights, save_checkpoint
from facetool.train.spec import Amp, TrainSetup

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingAmp(Amp):
    """fp32 Amp that remembers every loss it backpropagates."""

    def __init__(self) -> None:
        super().__init__("fp32", "cpu")
        self.losses: list[float] = []

    def backward(self, loss: torch.Tensor) -> None:
        self.losses.append(loss.item())
        super().backward(loss)


def make_setup(options, steps: int = 10) -> TrainSetup:
    return TrainSetup(
        options=options,
        size=SIZE,
        steps=steps,
        batch_size=2,
        device="cpu",
        seed=0,
        amp=RecordingAmp(),
        generator=torch.Generator().manual_seed(0),
    )


def tiny_pix2pix(**overrides) -> Pix2PixTrainer:
    torch.manual_seed(0)
    options = Pix2PixOptions(g_levels=5, d_base=8, **overrides)
    return Pix2PixTrainer(make_setup(options), "photo", "drawing")


def tiny_cyclegan(**overrides) -> CycleGANTrainer:
    torch.manual_seed(0)
    options = CycleGANOptions(g_base=8, g_blocks=2, d_base=8, **overrides)
    return CycleGANTrainer(make_setup(options), "photo", "drawing")


def paired_batch(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "pair": {
            "photo": torch.rand(2, 3, SIZE, SIZE, generator=g),
            "drawing": torch.rand(2, 1, SIZE, SIZE, generator=g),
        }
    }


def unpaired_batch(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "A": {"photo": torch.rand(2, 3, SIZE, SIZE, generator=g)},
        "B": {"drawing": torch.rand(2, 1, SIZE, SIZE, generator=g)},
    }


def snapshot(nets: dict) -> dict:
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}


def changed(before: dict, nets: dict) -> dict[str, bool]:
    return {
        name: any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True))
        for name, net in nets.items()
    }


# ---------------------------------------------------------------------------------------------------- pix2pix


def test_pix2pix_step_updates_g_and_d():
    trainer = tiny_pix2pix()
    assert trainer.configs["G"].in_channels == 3 and trainer.configs["G"].out_channels == 1
    assert trainer.configs["D"].in_channels == 4  # conditional: [photo, drawing]
    before = snapshot(trainer.nets)
    losses = trainer.train_step(paired_batch(), 0)
    assert set(losses) == {"D", "G_gan", "G_L1"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert changed(before, trainer.nets) == {"G": True, "D": True}
    assert all(p.requires_grad for p in trainer.nets["D"].parameters())  # restored after the G step
    assert all(s.last_epoch == 1 for s in trainer.schedulers.values())


@pytest.mark.parametrize("lambda_l1", [0.0, 100.0])
def test_pix2pix_l1_term_and_lambda(lambda_l1):
    trainer = tiny_pix2pix(lambda_l1=lambda_l1)
    G_copy = tiny_pix2pix().nets["G"]
    G_copy.load_state_dict(trainer.nets["G"].state_dict())
    batch = paired_batch()
    torch.manual_seed(5)
    losses = trainer.train_step(batch, 0)
    # The same dropout draws: G's forward is the step's first random draw.
    torch.manual_seed(5)
    fake = G_copy(batch["pair"]["photo"] * 2 - 1)
    expected_l1 = F.l1_loss(fake, batch["pair"]["drawing"] * 2 - 1).item()
    assert losses["G_L1"] == pytest.approx(expected_l1, rel=1e-5)
    d_loss, g_loss = trainer.setup.amp.losses
    assert d_loss == pytest.approx(losses["D"], rel=1e-6)
    assert g_loss == pytest.approx(losses["G_gan"] + lambda_l1 * expected_l1, rel=1e-5)


def test_pix2pix_wgan_and_samples():
    trainer = tiny_pix2pix(gan_mode="wgan")
    assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_step(paired_batch(), 0).values())
    columns = trainer.samples(paired_batch())
    assert [tuple(c.shape) for c in columns] == [(2, 3, SIZE, SIZE), (2, 1, SIZE, SIZE), (2, 1, SIZE, SIZE)]
    assert all(c.min() >= 0 and c.max() <= 1 for c in columns)
    assert trainer.nets["G"].training  # samples() restores train mode


def test_pix2pix_spec_roles_from_options():
    generic = pix2pix_train_spec(options_cls=Pix2PixRoleOptions)
    assert generic.streams(None) == {"pair": ("photo", "drawing")}
    assert generic.streams(Pix2PixRoleOptions(source="photo", target="loomis")) == {"pair": ("photo", "loomis")}
    fixed = pix2pix_train_spec("photo", "loomis")
    assert fixed.streams(Pix2PixOptions()) == {"pair": ("photo", "loomis")}
    with pytest.raises(ValueError, match="source / target"):
        pix2pix_train_spec(options_cls=Pix2PixOptions)
    with pytest.raises(ValueError, match="different"):
        Pix2PixRoleOptions(source="photo", target="photo")
    trainer = generic.build(make_setup(Pix2PixRoleOptions(target="overlay", g_levels=5, d_base=8)))
    assert trainer.configs["G"].out_channels == 3  # a role without a listed channel count is read as RGB
    trainer = generic.build(make_setup(Pix2PixRoleOptions(target="loomis", g_levels=5, d_base=8)))
    assert trainer.configs["G"].out_channels == 1  # the construction lines are one channel


# ---------------------------------------------------------------------------------------------------- schedule


def test_linear_decay_values():
    def rates(steps: int, decay_from: float) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = linear_decay(optimizer, steps, decay_from)
        out = []
        for _ in range(steps + 1):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    assert rates(10, 0.5) == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert rates(4, 0.0) == pytest.approx([1, 0.75, 0.5, 0.25, 0.0])
    assert rates(3, 1.0) == pytest.approx([1, 1, 1, 1])
    with pytest.raises(ValueError):
        linear_decay(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 10, 1.5)


# ---------------------------------------------------------------------------------------------------- inference


def test_image_to_image_range_and_channels():
    from facetool.nets.unet import UNet, UNetConfig

    torch.manual_seed(0)
    gray_in = UNet(UNetConfig(in_channels=1, out_channels=3, levels=3, base=4)).eval()
    net = ImageToImage(gray_in).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y = net(x)
        luma = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]
        expected = (gray_in(luma * 2 - 1) + 1) / 2
    assert y.shape == (2, 3, 16, 16)
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y, expected)

    rgb_in = UNet(UNetConfig(in_channels=3, out_channels=1, levels=3, base=4)).eval()
    gray = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ImageToImage(rgb_in)(gray), ImageToImage(rgb_in)(gray.repeat(1, 3, 1, 1)))
    assert match_channels(torch.ones(1, 3, 2, 2), 1).allclose(torch.ones(1, 1, 2, 2))


def test_load_generator_round_trip(tmp_path):
    trainer = tiny_pix2pix()
    trainer.train_step(paired_batch(), 0)
    state = TrainState(method="pix2pix", configs=trainer.configs)
    path = export_weights(tmp_path / "g.safetensors", {"G": trainer.nets["G"]}, dtype=torch.float16, state=state)
    loaded = load_generator(path, "G")
    reference = ImageToImage(trainer.nets["G"]).eval()
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x), atol=5e-3, rtol=0)
    assert next(loaded.parameters()).dtype == torch.float32 and not loaded.training

    run = tmp_path / "run"
    save_checkpoint(run, TrainState(method="pix2pix", step=1, configs=trainer.configs), trainer.nets)
    with torch.no_grad():
        torch.testing.assert_close(load_generator(run, "G")(x), reference(x))
    runner = stylize_runner(load_generator(run, "G"), "cpu")
    assert runner(x).shape == (2, 1, SIZE, SIZE)

    with pytest.raises(FacetoolError, match="no config for net 'G_AB'"):
        load_generator(path, "G_AB")
    with pytest.raises(UsageError, match="method pix2pix, not loomis-pix2pix"):
        load_generator(run, "G", method="loomis-pix2pix")
    bare = export_weights(tmp_path / "bare.safetensors", {"G": trainer.nets["G"]})
    with pytest.raises(FacetoolError, match="no config"):
        load_generator(bare, "G")
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(FacetoolError, match="not a safetensors"):
        load_generator(tmp_path / "junk.safetensors")


# ---------------------------------------------------------------------------------------------------- CycleGAN


def test_cyclegan_step_updates_all_nets():
    trainer = tiny_cyclegan()
    assert trainer.configs["G_AB"].in_channels == 3 and trainer.configs["G_AB"].out_channels == 1
    assert (trainer.configs["D_A"].in_channels, trainer.configs["D_B"].in_channels) == (3, 1)
    before = snapshot(trainer.nets)
    losses = trainer.train_step(unpaired_batch(), 0)
    assert set(losses) == {"D_A", "D_B", "G_AB", "G_BA", "cycle_A", "cycle_B", "idt_A", "idt_B"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert all(changed(before, trainer.nets).values())
    g_loss, d_loss = trainer.setup.amp.losses
    opts = trainer.options
    expected_g = (
        losses["G_AB"]
        + losses["G_BA"]
        + opts.lambda_a * losses["cycle_A"]
        + opts.lambda_b * losses["cycle_B"]
        + opts.lambda_identity * (opts.lambda_b * losses["idt_B"] + opts.lambda_a * losses["idt_A"])
    )
    assert g_loss == pytest.approx(expected_g, rel=1e-5)
    assert d_loss == pytest.approx(losses["D_A"] + losses["D_B"], rel=1e-5)
    columns = trainer.samples(unpaired_batch())
    assert [c.shape[1] for c in columns] == [3, 1, 3, 1, 3]


def test_cyclegan_no_identity_and_spec():
    trainer = tiny_cyclegan(lambda_identity=0.0)
    assert "idt_A" not in trainer.train_step(unpaired_batch(), 0)
    spec = cyclegan_train_spec("photo", "loomis")
    assert spec.streams(CycleGANOptions()) == {"A": ("photo",), "B": ("loomis",)}


def test_cyclegan_extra_state_round_trip():
    trainer = tiny_cyclegan()
    assert trainer.extra_state() == {}
    trainer.train_step(unpaired_batch(1), 0)
    trainer.train_step(unpaired_batch(2), 1)
    state = trainer.extra_state()
    assert set(state) == {"pool_A", "pool_B"}
    assert tuple(state["pool_A"].shape) == (4, 3, SIZE, SIZE) and tuple(state["pool_B"].shape) == (4, 1, SIZE, SIZE)

    other = tiny_cyclegan()
    other.load_extra_state(state)
    for name in ("A", "B"):
        assert len(other.pools[name]) == 4
        torch.testing.assert_close(torch.stack(other.pools[name].images), state[f"pool_{name}"])
    other.load_extra_state({})
    assert len(other.pools["A"]) == 0


def test_identity_loss_with_mismatched_channels():
    gray = torch.rand(2, 1, 8, 8) * 2 - 1
    colour = torch.rand(2, 3, 8, 8) * 2 - 1

    # 3 -> 1 generator fed a repeated gray image: a luma generator reproduces it exactly.
    assert identity_l1(lambda x: match_channels(x, 1), gray, in_channels=3).item() == pytest.approx(0.0, abs=1e-6)
    # 1 -> 3 generator fed the luma of a colour image: compared on luma, so a gray answer is not punished...
    assert identity_l1(lambda x: x.repeat(1, 3, 1, 1), colour, in_channels=1).item() == pytest.approx(0.0, abs=1e-6)
    # ... but a wrong brightness is.
    zero = identity_l1(lambda x: torch.zeros(x.shape[0], 3, 8, 8), colour, in_channels=1)
    assert zero.item() == pytest.approx(match_channels(colour, 1).abs().mean().item(), rel=1e-5)
    # Same channels: the plain L1.
    same = identity_l1(lambda x: x * 0.5, colour, in_channels=3)
    assert same.item() == pytest.approx((colour * 0.5).abs().mean().item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------------- plugin


def test_plugin_methods(tmp_path):
    import facetool_gan

    pix2pix, cyclegan = facetool_gan.pix2pix_method(), facetool_gan.cyclegan_method()
    assert pix2pix.task == cyclegan.task == "stylize" and pix2pix.weights is None
    assert pix2pix.train.options is Pix2PixRoleOptions
    with pytest.raises(UsageError, match="--weights RUN"):
        pix2pix.load(None, "cpu", None)
    with pytest.raises(UsageError, match="--weights RUN"):
        cyclegan.network(cyclegan.options(), None)

    trainer = tiny_cyclegan()
    path = export_weights(
        tmp_path / "c.safetensors",
        {"G_AB": trainer.nets["G_AB"], "G_BA": trainer.nets["G_BA"]},
        state=TrainState(method="cyclegan", configs=trainer.configs),
    )
    crops = torch.rand(1, 3, SIZE, SIZE)
    assert cyclegan.load(cyclegan.options(), "cpu", path)(crops).shape == (1, 1, SIZE, SIZE)
    assert cyclegan.load(cyclegan.options(direction="BA"), "cpu", path)(crops).shape == (1, 3, SIZE, SIZE)
    # evaluate feeds G_BA domain B and scores it against domain A
    from facetool.evaluate import io_roles

    roles = CycleGANRoleOptions(a="photo", b="cartoon")
    assert io_roles(cyclegan, roles, cyclegan.options()) == ("photo", "cartoon")
    assert io_roles(cyclegan, roles, cyclegan.options(direction="BA")) == ("cartoon", "photo")
    with pytest.raises(UsageError, match="holds weights of method cyclegan, not pix2pix"):
        pix2pix.network(None, path)


def test_plugin_registered_through_entry_point():
    from importlib import metadata

    from facetool.plugins import get_host

    if "gan" not in {ep.name for ep in metadata.entry_points(group="facetool")}:
        pytest.skip("the facetool_gan entry point is not installed yet (pip install -e .)")
    registry = get_host().generators
    assert registry.get("pix2pix").train is not None and registry.get("cyclegan").train is not None


def test_pix2pix_instance_norm_option_reaches_g_and_d():
    trainer = tiny_pix2pix(norm="instance")
    assert trainer.configs["G"].norm == trainer.configs["D"].norm == "instance"
    kinds = {type(m).__name__ for net in trainer.nets.values() for m in net.modules()}
    assert "InstanceNorm2d" in kinds and "BatchNorm2d" not in kinds
    losses = trainer.train_step(paired_batch(), 0)
    assert all(math.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="norm must be batch or instance"):
        Pix2PixOptions(norm="group")
