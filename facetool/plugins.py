"""The plugin host: loads plugins from the ``facetool`` entry-point group and collects what they register.

Built-in plugins (``plugins/`` in this repo) are entry points of the ``facetool`` distribution, so they load
through exactly the path a third-party package takes. ``FACETOOL_PLUGINS`` limits which load: a comma list of
entry-point names; set but empty loads none; unset loads all.

A plugin that fails to import or to register gives one warning naming it and is skipped (``--debug`` adds the
traceback); the CLI still works. A name registered twice keeps its first owner, facetool's own plugins before
others, and the other registration is left out with a warning naming both; so is a plugin command named like one
facetool already has.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from . import __version__, hookspecs
from .errors import UsageError

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
    disabled: bool = False  # installed, but FACETOOL_PLUGINS leaves it out


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (plugin problems: the CLI goes on)."""
    print(f"warning: {message}", file=sys.stderr)


def limited_note() -> str:
    """``FACETOOL_PLUGINS='…' limits which plugins load`` when it is set (an empty registry's likely cause), else ''."""
    value = os.environ.get(ENV_PLUGINS)
    return "" if value is None else f"{ENV_PLUGINS}={value!r} limits which plugins load"


def _debugging() -> bool:
    # Plugins load while the CLI is built, before it parses --debug: read the same switches it does.
    return os.environ.get("FACETOOL_DEBUG") == "1" or "--debug" in sys.argv[1:]


def _spec_class(hook: str) -> type | None:
    """The spec class a registry hook's register() takes (imported only when that registry is first used)."""
    if hook == "register_detectors":
        from .detectors import DetectorSpec as spec
    elif hook == "register_generators":
        from .methods import MethodSpec as spec
    elif hook == "register_losses":
        from .losses import LossSpec as spec
    elif hook == "register_exporters":
        from .exporters import ExporterSpec as spec
    elif hook == "register_assets":
        from .assets import Asset as spec
    else:
        return None
    return spec


class Registry(Generic[T]):
    """Name -> spec for one hook (detectors, generators, ...), filled on first use.

    Each hook implementation is called on its own with a ``register`` callback bound to its plugin, so the host
    knows who registered what.
    """

    def __init__(self, host: PluginHost, hook: str, kind: str) -> None:
        self.host, self.hook, self.kind = host, hook, kind
        self._items: dict[str, T] | None = None
        self._owner: dict[str, str] = {}

    def _collect(self) -> dict[str, T]:
        if self._items is not None:
            return self._items
        expected = _spec_class(self.hook)
        made: list[tuple[str, T]] = []  # (plugin, spec) in hook-call order
        for impl in getattr(self.host.pm.hook, self.hook).get_hookimpls():
            plugin = impl.plugin_name
            mine: list[tuple[str, T]] = []

            def register(spec: T, _plugin: str = plugin, _mine: list = mine) -> None:
                if expected is not None and not isinstance(spec, expected):
                    raise TypeError(f"register() got a {type(spec).__name__}; {self.hook} takes {expected.__name__}s")
                _mine.append((_plugin, spec))

            try:
                returned = impl.function(register=register)
                if returned is not None:  # pluggy's usual style, but this host asks for register() calls
                    raise TypeError(f"it returned a value; call register(spec) for each {self.kind} instead")
                made.extend(mine)
            except Exception as err:  # a broken plugin must not take the CLI down
                self.host.fail(plugin, self.hook, err)
            self.host.info(plugin).registered_hooks.add(self.hook)
        # Facetool's own plugins keep their names: a third-party plugin cannot take a built-in name over, and the
        # order plugins load in (alphabetical) does not decide between two third-party ones silently.
        made.sort(key=lambda item: not self.host.is_builtin(item[0]))
        items: dict[str, T] = {}
        for plugin, spec in made:
            name = spec.name  # type: ignore[attr-defined]
            if name in items:
                owner = self._owner[name]
                has = "registers it twice" if owner == plugin else f"plugin '{owner}' has that name"
                message = f"plugin '{plugin}': {self.kind} '{name}' left out ({has}; rename it in the plugin)"
                warn(message)
                info = self.host.info(plugin)
                info.error = info.error or message.split(": ", 1)[1]
                continue
            items[name] = spec
            self._owner[name] = plugin
            self.host.info(plugin).registered.setdefault(self.kind, []).append(name)
        self._items = items
        return items

    def names(self) -> list[str]:
        return sorted(self._collect())

    def all(self) -> dict[str, T]:
        return dict(sorted(self._collect().items()))

    def owner(self, name: str) -> str:
        self._collect()
        return self._owner[name]

    def get(self, name: str) -> T:
        items = self._collect()
        if name not in items:
            why = limited_note() or "see facetool plugins"
            known = ", ".join(sorted(items)) or f"none (no plugin registers a {self.kind}; {why})"
            raise UsageError(f"unknown {self.kind} '{name}'; available: {known}")
        return items[name]


class PluginHost:
    """A pluggy manager plus the registries built from it."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("facetool")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        #: Problems that belong to no loaded plugin (a FACETOOL_PLUGINS name nothing has, an entry-point name two
        #: distributions give): warned at load, and failures of ``facetool plugins --strict``.
        self.problems: list[str] = []
        self._loaded = False
        self.detectors: Registry[Any] = Registry(self, "register_detectors", "detector")
        self.generators: Registry[Any] = Registry(self, "register_generators", "method")
        self.losses: Registry[Any] = Registry(self, "register_losses", "loss")
        self.exporters: Registry[Any] = Registry(self, "register_exporters", "exporter")
        self.assets: Registry[Any] = Registry(self, "register_assets", "asset")

    def is_builtin(self, name: str) -> bool:
        """The core and the plugins facetool itself installs (entry points of the ``facetool`` distribution)."""
        return name == "core" or self.info(name).distribution == "facetool"

    def fail(self, plugin: str, where: str, err: BaseException) -> None:
        """One warning for a plugin that failed (its traceback too under --debug), recorded for facetool plugins."""
        warn(f"plugin '{plugin}' failed in {where}: {type(err).__name__}: {err}")
        if _debugging():
            traceback.print_exception(err, file=sys.stderr)
        info = self.info(plugin)
        info.error = info.error or f"{where}: {type(err).__name__}: {err}"

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
        self.plugins["core"] = PluginInfo(name="core", module="facetool.builtin", distribution="facetool",
                                          version=__version__)
        allowed = self.allowed()
        seen: set[str] = set()
        # facetool's own distribution first among entry points of one name, so another package cannot replace one
        # of its plugins by reusing the name (the registries keep built-in names for the same reason).
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(entry_points, key=lambda e: (e.name, _dist(e) != "facetool")):
            if allowed is not None and ep.name not in allowed:
                if ep.name not in self.plugins:  # listed by facetool plugins as off, never imported
                    self.plugins[ep.name] = PluginInfo(name=ep.name, module=ep.value, disabled=True)
                continue
            if ep.name in seen:
                other = self.plugins[ep.name].distribution
                if _dist(ep) != other:  # the same distribution seen twice on sys.path is harmless
                    clash = f"is provided by both {other} and {_dist(ep) or 'another package'}; using {other}"
                    self._problem(f"plugin name '{ep.name}' {clash}")
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
                self._check_hook_names(ep.name)
            except Exception as err:
                info.error = f"import: {type(err).__name__}: {err}"
                warn(f"plugin '{ep.name}' ({ep.value}) failed to load: {type(err).__name__}: {err}")
                if _debugging():
                    traceback.print_exception(err, file=sys.stderr)
        if allowed:
            for missing in sorted(allowed - seen - {"core"}):  # the core always loads
                self._problem(f"{ENV_PLUGINS} names '{missing}', but no installed plugin has that name")
        return self

    def _problem(self, message: str) -> None:
        warn(message)
        self.problems.append(message)

    def _check_hook_names(self, name: str) -> None:
        """Hook functions facetool never calls, said once: one named like no facetool hook (``register_detector``),
        and one named like a hook but not marked ``@hookimpl`` (pluggy passes over it without a word)."""
        plugin = self.pm.get_plugin(name)
        known = sorted(n for n in dir(hookspecs) if n.startswith("register_"))
        unknown = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [] if c.spec is None)
        unmarked = [h for h in known if callable(getattr(plugin, h, None)) and not _marked(getattr(plugin, h))]
        problems = []
        if unknown:
            problems.append(f"unknown hook {', '.join(unknown)} (facetool's hooks: {', '.join(known)})")
        if unmarked:
            problems.append(f"{', '.join(unmarked)} not marked @facetool.hookimpl, so never called")
        for message in problems:
            warn(f"plugin '{name}': {message}")
            info = self.info(name)
            info.error = info.error or message

    def register_object(self, plugin: object, name: str) -> None:
        """Register an in-process plugin (tests, notebooks); it shows in ``facetool plugins`` like any other."""
        self.pm.register(plugin, name=name)
        self.plugins.setdefault(name, PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin))))
        self._check_hook_names(name)

    def call_commands(self, app: Any) -> None:
        """Each plugin's ``register_commands``; a command or group named like one already on ``app`` (facetool's own,
        or an earlier plugin's) is left out with a warning: a plugin cannot replace ``stylize`` or ``plugins``."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            plugin = impl.plugin_name
            taken = _command_names(app)
            before = (len(app.registered_commands), len(app.registered_groups))
            try:
                impl.function(app=app)
            except Exception as err:
                self.fail(plugin, "register_commands", err)
                continue
            finally:
                self.info(plugin).registered_hooks.add("register_commands")
            for listing, start in ((app.registered_commands, before[0]), (app.registered_groups, before[1])):
                for entry in list(listing[start:]):
                    name = _command_name(entry)
                    if name in taken:
                        listing.remove(entry)
                        warn(f"plugin '{plugin}': command '{name}' left out (facetool already has one of that name)")
                        info = self.info(plugin)
                        info.error = info.error or f"register_commands: command '{name}' left out (name taken)"
                    else:
                        taken.add(name)
                        self.info(plugin).registered.setdefault("command", []).append(name)

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
                    "disabled": info.disabled,
                }
            )
        return out


def _marked(function: Any) -> bool:
    """Whether ``function`` carries facetool's ``@hookimpl`` mark (pluggy's attribute ``<project>_impl``)."""
    return hasattr(function, "facetool_impl")


def _dist(ep: metadata.EntryPoint) -> str | None:
    """The name of the distribution an entry point comes from (None when unknown)."""
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _command_name(entry: Any) -> str | None:
    """The name typer gives a registered command (CommandInfo) or group (TyperInfo): its own, its sub-app's, or
    its callback's function name; None when none can be told."""

    def text(value: Any) -> str | None:
        value = getattr(value, "value", value) if type(value).__name__ == "DefaultPlaceholder" else value
        return value if isinstance(value, str) and value else None

    instance = getattr(entry, "typer_instance", None)
    name = text(getattr(entry, "name", None)) or (text(instance.info.name) if instance is not None else None)
    if name is None:
        callback = getattr(entry, "callback", None)
        name = text(getattr(callback, "__name__", None)) if callable(callback) else None
    return None if name is None else name.lower().replace("_", "-")


def _command_names(app: Any) -> set[str | None]:
    names = {_command_name(c) for c in app.registered_commands} | {_command_name(g) for g in app.registered_groups}
    return names - {None}


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
