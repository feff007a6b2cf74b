import json
from importlib import metadata

import pytest
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.detectors import DetectorSpec
from facetool.errors import PluginError, UsageError
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


def test_duplicate_name_is_an_error_naming_both_plugins(monkeypatch):
    host = _host(monkeypatch)
    host.register_object(_Plugin("same"), "one")
    host.register_object(_Plugin("same"), "two")
    with pytest.raises(PluginError) as info:
        host.detectors.get("same")
    assert "'one'" in str(info.value) and "'two'" in str(info.value)


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
    assert set(host.plugins) == {"core", "mtcnn"}
    assert host.detectors.names() == ["mtcnn"]
    assert "'nope'" in capsys.readouterr().err
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
