"""facetool: a plugin-based toolchain for GAN face work.

Import cost matters (``facetool --help`` must start fast): nothing here imports torch.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Decorator plugins use to implement the hooks in :mod:`facetool.hookspecs`.
hookimpl = pluggy.HookimplMarker("facetool")

__all__ = ["__version__", "hookimpl"]
