import json
from importlib import metadata

import pytest
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.detectors import DetectorSpec
from facetool.errors import UsageError
from facetool.plugins import PluginHost


class _Plugin:
    def __init__(self, *names):
        self.names = names

    @hookimpl
    def register_detectors(self, register):
        for name in self.names:
            register(DetectorSpec(name=name, load=lambda o, d: None, description="test"))


class _Broken:
    @hookimpl
    def register_detectors(self, register):
        raise RuntimeError("boom")


def _host(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")  # no entry points: only what the test registers
    return PluginHost().load()


def test_registered_names_and_owner(monkeypatch):
    host = _host(monkeypatch)
    host.register_object(_Plugin("a", "b"), "first")
    assert host.detectors.names() == ["a", "b"]
    assert host.detectors.owner("a") == "first"
    with pytest.raises(UsageError, match="unknown detector 'zzz'; available: a, b"):
        host.detectors.get("zzz")


def test_a_name_registered_twice_keeps_its_first_owner_and_warns(monkeypatch, capsys):
    host = _host(monkeypatch)
    host.register_object(_Plugin("same", "other"), "one")
    host.register_object(_Plugin("same", "third", "third"), "two")
    assert host.detectors.names() == ["other", "same", "third"]  # the rest of both plugins still works
    assert host.detectors.owner("same") == "one"
    err = capsys.readouterr().err.splitlines()
    assert "plugin 'two': detector 'same' left out (plugin 'one' has that name" in err[0]
    assert "plugin 'two': detector 'third' left out (registers it twice" in err[1] and len(err) == 2
    described = {p["name"]: p for p in host.describe()}
    assert "left out" in described["two"]["error"] and described["one"]["error"] is None


def test_a_third_party_plugin_cannot_take_a_builtin_name(monkeypatch, capsys):
    monkeypatch.setenv("FACETOOL_PLUGINS", "dlib")
    host = PluginHost().load()
    host.register_object(_Plugin("dlib"), "aaa-first")  # hook order would put it first: the built-in still wins
    assert host.detectors.owner("dlib") == "dlib"
    assert "plugin 'aaa-first': detector 'dlib' left out (plugin 'dlib' has that name" in capsys.readouterr().err


class _WrongSpec:
    @hookimpl
    def register_detectors(self, register):
        register({"name": "dict"})


class _Returns:
    @hookimpl
    def register_detectors(self, register):
        return [DetectorSpec(name="returned", load=lambda o, d: None, description="test")]


def test_a_wrong_spec_or_a_returned_list_is_a_warning_naming_the_plugin(monkeypatch, capsys):
    host = _host(monkeypatch)
    host.register_object(_WrongSpec(), "wrong")
    host.register_object(_Returns(), "returns")
    host.register_object(_Plugin("ok"), "fine")
    assert host.detectors.names() == ["ok"]
    err = capsys.readouterr().err
    assert "plugin 'wrong' failed in register_detectors: TypeError: register() got a dict; " in err
    assert "register_detectors takes DetectorSpecs" in err
    assert "plugin 'returns' failed in register_detectors: TypeError: it returned a value; call register" in err


def test_debug_shows_a_failing_plugins_traceback(monkeypatch, capsys):
    host = _host(monkeypatch)
    monkeypatch.setenv("FACETOOL_DEBUG", "1")
    host.register_object(_Broken(), "broken")
    assert host.detectors.names() == []
    err = capsys.readouterr().err
    assert "plugin 'broken' failed" in err and "Traceback" in err and 'raise RuntimeError("boom")' in err


def test_broken_plugin_warns_and_others_still_work(monkeypatch, capsys):
    host = _host(monkeypatch)
    host.register_object(_Broken(), "broken")
    host.register_object(_Plugin("ok"), "fine")
    assert host.detectors.names() == ["ok"]
    err = capsys.readouterr().err
    assert "plugin 'broken'" in err and "boom" in err and err.count("\n") == 1
    described = {p["name"]: p for p in host.describe()}
    assert described["broken"]["error"] and described["fine"]["registered"] == {"detector": ["ok"]}


def test_env_var_selects_plugins(monkeypatch, capsys):
    monkeypatch.setenv("FACETOOL_PLUGINS", "mtcnn,nope")
    host = PluginHost().load()
    assert {name for name, info in host.plugins.items() if not info.disabled} == {"core", "mtcnn"}
    assert host.plugins["dlib"].disabled and host.pm.get_plugin("dlib") is None  # listed as off, never imported
    assert host.detectors.names() == ["mtcnn"]
    assert "'nope'" in capsys.readouterr().err
    result = CliRunner().invoke(build_app(), ["plugins", "--json"])
    data = {p["name"]: p for p in json.loads(result.stdout)}
    assert data["dlib"]["disabled"] and not data["mtcnn"]["disabled"] and data["dlib"]["error"] is None
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    assert PluginHost().load().detectors.names() == []


def test_entry_point_that_fails_to_import_warns(monkeypatch, capsys):
    broken = metadata.EntryPoint(name="ghost", value="facetool_no_such_module", group="facetool")
    real = metadata.entry_points

    def fake(**kw):
        return list(real(**kw)) + [broken] if kw.get("group") == "facetool" else real(**kw)

    monkeypatch.delenv("FACETOOL_PLUGINS", raising=False)
    monkeypatch.setattr(metadata, "entry_points", fake)
    app = build_app()  # plugins load here: the warning is printed once, at start-up
    assert "plugin 'ghost'" in capsys.readouterr().err
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    data = {p["name"]: p for p in json.loads(result.stdout)}
    assert "import" in data["ghost"]["error"]
    assert "dlib" in data and data["dlib"]["error"] is None
    strict = CliRunner().invoke(app, ["plugins", "--strict"])  # a plugin author's CI: the failure is an exit code
    assert strict.exit_code == 1 and "ghost" in strict.stdout
    assert strict.stderr.strip() == "facetool: error: --strict: 1 problem(s): plugin 'ghost'"


def test_an_entry_point_name_of_facetools_own_stays_facetools(monkeypatch):
    impostor = metadata.EntryPoint(name="mtcnn", value="facetool_no_such_module", group="facetool")
    real = metadata.entry_points

    def fake(**kw):  # the impostor listed first: the order entry points come in must not decide
        return [impostor, *real(**kw)] if kw.get("group") == "facetool" else real(**kw)

    monkeypatch.setenv("FACETOOL_PLUGINS", "mtcnn")
    monkeypatch.setattr(metadata, "entry_points", fake)
    host = PluginHost().load()
    assert host.plugins["mtcnn"].distribution == "facetool" and host.plugins["mtcnn"].error is None
    assert host.problems == ["plugin name 'mtcnn' is provided by both facetool and another package; using facetool"]


class _Misspelled:
    @hookimpl
    def register_detector(self, register):  # no such hook: register_detectors
        raise AssertionError("never called")


class _Unmarked:
    def register_detectors(self, register):  # no @hookimpl: pluggy never calls it
        raise AssertionError("never called")


def test_a_hook_without_its_mark_is_the_plugins_problem(monkeypatch, capsys):
    host = _host(monkeypatch)
    host.register_object(_Unmarked(), "bare")
    assert "plugin 'bare': register_detectors not marked @facetool.hookimpl" in capsys.readouterr().err
    assert host.detectors.names() == [] and {p["name"]: p for p in host.describe()}["bare"]["error"]


def test_an_unknown_hook_name_is_the_plugins_problem(monkeypatch, capsys):
    host = _host(monkeypatch)
    host.register_object(_Misspelled(), "typo")
    err = capsys.readouterr().err
    assert "plugin 'typo': unknown hook register_detector (facetool's hooks: register_assets, " in err
    assert {p["name"]: p for p in host.describe()}["typo"]["error"].startswith("unknown hook register_detector")


def test_strict_fails_on_a_plugin_name_nothing_installs(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "mtcnn,nosuch")
    result = CliRunner().invoke(build_app(), ["plugins", "--strict"])
    assert result.exit_code == 1
    assert "--strict: 1 problem(s): FACETOOL_PLUGINS names 'nosuch', but no installed plugin" in result.stderr


def test_strict_passes_when_every_plugin_loads():
    result = CliRunner().invoke(build_app(), ["plugins", "--strict", "--json"])
    assert result.exit_code == 0, result.output
    assert all(p["error"] is None for p in json.loads(result.stdout))


def test_plugins_json_lists_builtins_through_entry_points(monkeypatch):
    monkeypatch.delenv("FACETOOL_PLUGINS", raising=False)
    result = CliRunner().invoke(build_app(), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = {p["name"]: p for p in json.loads(result.stdout)}
    for name in ("dlib", "mtcnn", "mediapipe", "insightface"):
        assert data[name]["distribution"] == "facetool" and data[name]["version"]
        assert "register_detectors" in data[name]["hooks"]
        assert name in data[name]["registered"]["detector"]
    assert "mtcnn-onet" in data["core"]["registered"]["asset"]
    assert {"gan-lsgan", "gradient-penalty", "chamfer-dt"} <= set(data["core"]["registered"]["loss"])


class _Commands:
    @hookimpl
    def register_commands(self, app):
        @app.command()
        def hello(name: str = "world") -> None:
            """Say hello (a plugin's own command)."""
            print(f"hello {name}")


def test_plugin_adds_a_command(monkeypatch):
    from facetool.plugins import get_host

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(_Commands(), "greeter")
    app = build_app()
    result = CliRunner().invoke(app, ["hello", "--name", "faces"])
    assert result.exit_code == 0 and result.stdout.strip() == "hello faces"
    assert "hello" in CliRunner().invoke(app, ["--help"]).stdout


class _Hijack:
    @hookimpl
    def register_commands(self, app):
        import typer

        @app.command("stylize")
        def stylize() -> None:
            print("hijacked")

        @app.command()
        def plugins() -> None:
            print("hijacked")

        app.add_typer(typer.Typer(), name="assets")
        app.add_typer(typer.Typer(name="data"))  # named by its own Typer: typer's placeholder on the group
        app.add_typer(typer.Typer(name="own-group"))

        @app.command("own-thing")
        def own_thing() -> None:
            print("mine")


def test_a_plugin_command_cannot_replace_facetools_own(monkeypatch, capsys):
    from facetool.plugins import get_host

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(_Hijack(), "hijack")
    app = build_app()
    err = capsys.readouterr().err
    for name in ("stylize", "plugins", "assets", "data"):
        assert f"plugin 'hijack': command '{name}' left out (facetool already has one of that name)" in err
    assert CliRunner().invoke(app, ["own-thing"]).stdout.strip() == "mine"
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0 and "hijacked" not in result.stdout
    data = {p["name"]: p for p in json.loads(result.stdout)}
    assert data["hijack"]["registered"] == {"command": ["own-group", "own-thing"]}
    assert "left out" in data["hijack"]["error"]
    assert "--method" in CliRunner().invoke(app, ["stylize", "--help"]).stdout  # the core's own


def test_an_empty_registry_names_facetool_plugins_when_it_is_set(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "nosuch")
    result = CliRunner().invoke(build_app(), ["detect", "samples/astronaut.png"])
    assert result.exit_code == 2 and "no detector is registered; FACETOOL_PLUGINS='nosuch' limits" in result.stderr
    result = CliRunner().invoke(build_app(), ["stylize", "samples/astronaut.png", "-m", "apdrawing"])
    assert "available: none (no plugin registers a method; FACETOOL_PLUGINS='nosuch' limits" in result.stderr
    monkeypatch.setenv("FACETOOL_PLUGINS", "core,dlib")  # the core always loads: naming it is no mistake
    result = CliRunner().invoke(build_app(), ["detectors"])
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_methods_name_speaks_of_the_methods_own_command(monkeypatch):
    monkeypatch.delenv("FACETOOL_PLUGINS", raising=False)
    result = CliRunner().invoke(build_app(), ["methods", "wgan-landmark"])
    assert "options (facetool generate -O key=value)" in result.stdout
    assert "options (facetool reconstruct -O" in CliRunner().invoke(build_app(), ["methods", "facevision"]).stdout
