"""The plugin host: loads plugins from the ``facetool`` entry-point group and collects what they register.

Built-in plugins (``plugins/`` in this repo) are entry points of the ``facetool`` distribution, so they load
through exactly the path a third-party package takes. ``FACETOOL_PLUGINS`` limits which load: a comma list of
entry-point names; set but empty loads none; unset loads all.

A plugin that fails to import or to register gives one warning naming it and is skipped; the CLI still works.
Two plugins registering one name is an error naming both, raised when that kind is first looked up.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from . import hookspecs
from .errors import PluginError, UsageError

ENTRY_POINT_GROUP = "facetool"
ENV_PLUGINS = "FACETOOL_PLUGINS"

T = TypeVar("T")


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    registered_hooks: set[str] = field(default_factory=set)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class Registry(Generic[T]):
    """Name -> spec for one hook (detectors, generators, ...), filled on first use.

    Each hook implementation is called on its own with a ``register`` callback bound to its plugin, so the host
    knows who registered what.
    """

    def __init__(self, host: PluginHost, hook: str, kind: str) -> None:
        self.host, self.hook, self.kind = host, hook, kind
        self._items: dict[str, T] | None = None
        self._owner: dict[str, str] = {}
        self._conflicts: list[str] = []

    def _collect(self) -> dict[str, T]:
        if self._items is not None:
            return self._items
        items: dict[str, T] = {}
        for impl in getattr(self.host.pm.hook, self.hook).get_hookimpls():
            plugin = impl.plugin_name

            def register(spec: T, _plugin: str = plugin) -> None:
                name = spec.name  # type: ignore[attr-defined]
                if name in items:
                    self._conflicts.append(
                        f"{self.kind} '{name}' is registered by both plugin '{self._owner[name]}' and plugin "
                        f"'{_plugin}' (uninstall one, or choose plugins with {ENV_PLUGINS})"
                    )
                    return
                items[name] = spec
                self._owner[name] = _plugin
                self.host.info(_plugin).registered.setdefault(self.kind, []).append(name)

            try:
                impl.function(register=register)
            except Exception as err:  # a broken plugin must not take the CLI down
                _warn(f"plugin '{plugin}' failed in {self.hook}: {type(err).__name__}: {err}")
                self.host.info(plugin).error = f"{self.hook}: {type(err).__name__}: {err}"
            self.host.info(plugin).registered_hooks.add(self.hook)
        self._items = items
        return items

    def _check(self) -> dict[str, T]:
        items = self._collect()
        if self._conflicts:
            raise PluginError(self._conflicts[0])
        return items

    def names(self) -> list[str]:
        return sorted(self._check())

    def all(self) -> dict[str, T]:
        return dict(sorted(self._check().items()))

    def owner(self, name: str) -> str:
        self._check()
        return self._owner[name]

    def get(self, name: str) -> T:
        items = self._check()
        if name not in items:
            known = ", ".join(sorted(items)) or f"none (no plugin registers a {self.kind}; see facetool plugins)"
            raise UsageError(f"unknown {self.kind} '{name}'; available: {known}")
        return items[name]


class PluginHost:
    """A pluggy manager plus the registries built from it."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("facetool")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._loaded = False
        self.detectors: Registry[Any] = Registry(self, "register_detectors", "detector")
        self.generators: Registry[Any] = Registry(self, "register_generators", "method")
        self.losses: Registry[Any] = Registry(self, "register_losses", "loss")
        self.exporters: Registry[Any] = Registry(self, "register_exporters", "exporter")
        self.assets: Registry[Any] = Registry(self, "register_assets", "asset")

    def info(self, name: str) -> PluginInfo:
        if name not in self.plugins:
            self.plugins[name] = PluginInfo(name=name, module=name)
        return self.plugins[name]

    def allowed(self) -> set[str] | None:
        raw = os.environ.get(ENV_PLUGINS)
        if raw is None:
            return None
        return {part.strip() for part in raw.split(",") if part.strip()}

    def load(self) -> PluginHost:
        """Import every allowed entry point of the ``facetool`` group, once."""
        if self._loaded:
            return self
        self._loaded = True
        from . import builtin

        self.pm.register(builtin, name="core")
        self.plugins["core"] = PluginInfo(name="core", module="facetool.builtin", distribution="facetool")
        allowed = self.allowed()
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            if ep.name in seen:
                other = self.plugins[ep.name].distribution
                dist_name = getattr(getattr(ep, "dist", None), "metadata", {}).get("Name") if ep.dist else None
                if dist_name != other:  # the same distribution seen twice on sys.path is harmless
                    _warn(f"plugin name '{ep.name}' is provided by both {other} and {dist_name}; using {other}")
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            self.plugins[ep.name] = info
            try:
                module = ep.load()
                self.pm.register(module, name=ep.name)
            except Exception as err:
                info.error = f"import: {type(err).__name__}: {err}"
                _warn(f"plugin '{ep.name}' ({ep.value}) failed to load: {type(err).__name__}: {err}")
        if allowed:
            for missing in sorted(allowed - seen):
                _warn(f"{ENV_PLUGINS} names '{missing}', but no installed plugin has that name")
        return self

    def register_object(self, plugin: object, name: str) -> None:
        """Register an in-process plugin (tests, notebooks); it shows in ``facetool plugins`` like any other."""
        self.pm.register(plugin, name=name)
        self.plugins.setdefault(name, PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin))))

    def call_commands(self, app: Any) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(app=app)
                self.info(impl.plugin_name).registered_hooks.add("register_commands")
            except Exception as err:
                _warn(f"plugin '{impl.plugin_name}' failed in register_commands: {type(err).__name__}: {err}")

    def describe(self) -> list[dict[str, Any]]:
        """Everything ``facetool plugins --json`` prints."""
        for registry in (self.detectors, self.generators, self.losses, self.exporters, self.assets):
            registry._collect()
        out = []
        for info in sorted(self.plugins.values(), key=lambda i: i.name):
            hooks = sorted(info.registered_hooks)
            plugin = self.pm.get_plugin(info.name)
            if plugin is not None:
                hooks = sorted(set(hooks) | {h.name for h in self.pm.get_hookcallers(plugin) or []})
            out.append(
                {
                    "name": info.name,
                    "module": info.module,
                    "distribution": info.distribution,
                    "version": info.version,
                    "hooks": hooks,
                    "registered": {k: sorted(v) for k, v in sorted(info.registered.items())},
                    "error": info.error,
                }
            )
        return out


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, plugins loaded."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host.load()


def reset_host() -> None:
    """Forget the loaded plugins (tests change ``FACETOOL_PLUGINS`` between runs)."""
    global _host
    _host = None
