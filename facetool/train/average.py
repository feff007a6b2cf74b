"""Weight averaging: an exponential moving average of the exported nets' weights, kept beside the training.

A GAN's generator weights oscillate step to step (the critic keeps moving the target); the average over the last
few hundred steps draws smoother, less noisy images than any single step's weights (Yazıcı et al., "The Unusual
Effectiveness of Averaging in GAN Training", ICLR 2019; StyleGAN's G_ema). Training itself is unchanged: the
average is read, never trained, and is what the run exports when ``facetool train --average DECAY`` is on.

Checkpoints hold it as the pseudo-net ``_average`` (keys ``<net>.<param>`` plus ``updates``), so a resumed run goes
on averaging where it stopped, and ``load_weights`` on a checkpoint folder gives the averaged nets.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

AVERAGE = "_average"  # pseudo-net name in checkpoints
UPDATES = "updates"  # key of the update count inside it


def average_decay(decay: float, updates: int) -> float:
    """The decay used at update number ``updates`` (0-based): ``min(decay, (1 + n) / (10 + n))``.

    Early on the average forgets its start quickly (0.1 at the first update, 0.5 at the eighth), so averaging
    switched on late in a run, or at step 0, does not drag the first weights along for thousands of steps; later the
    average spans about the last n / 9 updates until ``decay`` caps it (1 / (1 - decay) updates)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """Averaged copies of ``nets`` (floating parameters averaged; buffers such as batch-norm statistics copied).

    Args:
        nets: name -> the training net (its copy is made now, from its current weights).
        decay: the average's decay per update, in (0, 1).
    """

    def __init__(self, nets: Mapping[str, nn.Module], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.updates = 0
        self.sources = dict(nets)
        self.nets = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in nets.items()}

    def update(self) -> None:
        """Move each average toward its training net's current weights (call after every optimisation step)."""
        import torch

        weight = 1.0 - average_decay(self.decay, self.updates)
        with torch.no_grad():
            for name, average in self.nets.items():
                source = self.sources[name]
                for kept, new in zip(average.parameters(), source.parameters(), strict=True):
                    kept.lerp_(new.detach(), weight)
                for kept, new in zip(average.buffers(), source.buffers(), strict=True):
                    kept.copy_(new)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within: the training nets hold the averaged weights (sample grids show what the run exports); after, their
        own again, exactly (copied back in place, so optimisers keep their parameters)."""
        own = {name: {k: v.clone() for k, v in self.sources[name].state_dict().items()} for name in self.nets}
        try:
            for name, average in self.nets.items():
                self.sources[name].load_state_dict(average.state_dict())
            yield
        finally:
            for name, weights in own.items():
                self.sources[name].load_state_dict(weights)

    def state(self) -> dict[str, torch.Tensor]:
        """Flat tensors for a checkpoint: ``<net>.<key>`` and ``updates``."""
        import torch

        tensors = {f"{name}.{key}": value for name, net in self.nets.items() for key, value in net.state_dict().items()}
        tensors[UPDATES] = torch.tensor(self.updates, dtype=torch.int64)
        return tensors

    def load(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore :meth:`state` (from a checkpoint of the same nets)."""
        per_net = split_average(tensors)
        for name, average in self.nets.items():
            average.load_state_dict(per_net[name])
        self.updates = int(tensors[UPDATES])


def split_average(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The ``_average`` pseudo-net's tensors as per-net state dicts (the update count left out)."""
    from .checkpoint import split_nets

    return split_nets({key: tensor for key, tensor in tensors.items() if key != UPDATES})
