"""``--device auto|cpu|cuda|mps`` resolution (torch imported only when asked)."""

from __future__ import annotations

from .errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """'auto' -> cuda if available, else mps, else cpu. An explicit device that is absent is a usage error."""
    import torch

    name = (name or "auto").lower()
    base = name.split(":")[0]
    if base not in DEVICES:
        raise UsageError(f"unknown device '{name}'; use one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if base == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if base == "cuda" and not cuda:
        raise UsageError("--device cuda: no CUDA GPU is visible to torch on this machine")
    if base == "mps" and not mps:
        raise UsageError("--device mps: Apple MPS is not available on this machine")
    return name
