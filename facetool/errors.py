"""Errors the CLI turns into one line on stderr and an exit code.

Library code raises these instead of printing; the CLI catches them, prints ``str(err)`` and exits with
``err.exit_code`` (2 for usage errors, 1 for failures). Anything else is a bug and shows a traceback
only under ``--debug``.
"""

from __future__ import annotations


class FacetoolError(Exception):
    """A failure the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(FacetoolError):
    """The command line asks for something that does not exist or does not fit (exit code 2)."""

    exit_code = 2


class ImageError(FacetoolError):
    """An input image is missing, unreadable, corrupt or too large; or an output cannot be written."""


class AssetError(FacetoolError):
    """An asset is missing from the cache, or failed its size / sha256 check."""


class UnknownAssetError(UsageError, AssetError):
    """A name that no plugin registered as an asset: a usage error (exit code 2) that is still an AssetError."""


class PluginError(FacetoolError):
    """Plugins disagree (two register one name) or a plugin broke its contract."""


class TrainingStopped(FacetoolError):
    """A training run stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint; exit code 130."""

    exit_code = 130
