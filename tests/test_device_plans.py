"""scripts/device: the GPU-machine plans name real methods, options and data, and the script refuses bad calls.

A plan runs only on a borrowed GPU machine, for minutes, with no second try to spare: a misspelt option or a
missing data folder found there costs the whole lease, so it is checked here.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEVICE = ROOT / "scripts" / "device"
PLANS = sorted(DEVICE.glob("*.plan"))


def plan_runs(plan: Path) -> list[tuple[str, list[str]]]:
    """The plan's RUNS as (name, facetool train arguments), read by bash itself."""
    show = f'HERE={shlex.quote(str(ROOT))}; source {shlex.quote(str(plan))}; printf "%s\\n" "${{RUNS[@]}}"'
    shown = subprocess.run(["bash", "-c", show], capture_output=True, text=True, check=True)
    runs = []
    for line in shown.stdout.splitlines():
        name, _, args = line.partition("|")
        assert not re.search(r"[\"'*?\[\]\\]", args), f"{plan.name}: the script splits on spaces only: {args}"
        runs.append((name, args.split()))
    return runs


def test_there_are_plans() -> None:
    assert {p.stem for p in PLANS} >= {"wgan-landmark", "cartoon"}


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.stem)
def test_plan_runs_parse(plan: Path) -> None:
    from facetool.options import parse_options
    from facetool.plugins import get_host

    runs = plan_runs(plan)
    assert runs and len({name for name, _ in runs}) == len(runs)  # one output name per run
    for name, args in runs:
        assert name.replace("-", "").isalnum()
        method, rest = args[0], args[1:]
        spec = get_host().generators.get(method)
        assert spec.train is not None
        pairs = [rest[i + 1] for i, a in enumerate(rest) if a in ("-T", "-O", "--option")]
        options = parse_options(spec.train.options, pairs, f"training of {method}")  # raises on an unknown key
        assert options is not None
        for pair in pairs:  # files the options name exist in the repository
            if pair.endswith(".safetensors"):
                assert Path(pair.split("=", 1)[1]).is_file(), pair
        assert "--out" not in rest and "--device" not in rest  # the script sets both


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.stem)
def test_plan_makes_the_data_its_runs_read(plan: Path, tmp_path: Path) -> None:
    here = tmp_path / "repo"
    for name in ("crops", "cartoons"):  # what `prepare crops:jpeg cartoons` carries
        (here / ".device" / "data" / name).mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    make = f"HERE={shlex.quote(str(here))}; source {shlex.quote(str(plan))}; set -e; make_data"
    subprocess.run(["bash", "-c", make], cwd=work, check=True, capture_output=True)
    for _, args in plan_runs(plan):
        for i, a in enumerate(args):
            if a == "--data":
                assert (work / args[i + 1]).is_dir(), f"{plan.name}: --data {args[i + 1]} is not made"


def test_plan_flags_are_train_flags() -> None:
    from typer.testing import CliRunner

    from facetool.cli import build_app

    help_text = CliRunner().invoke(build_app(), ["train", "--help"], env={"COLUMNS": "200"}).output
    known = set(re.findall(r"--[a-z][a-z-]*", help_text))
    for plan in PLANS:
        for _, args in plan_runs(plan):
            for flag in (a for a in args if a.startswith("--")):
                assert flag in known, f"{plan.name}: {flag}"


@pytest.mark.parametrize(
    "args",
    [[], ["nonsense"], ["run"], ["run", "no-such-plan", "100"], ["run", "wgan-landmark,nope", "100"],
     ["run", "wgan-landmark,wgan-landmark", "100"], ["run", "wgan-landmark", "ten"], ["run", "wgan-landmark", "0"],
     ["run", "wgan-landmark", "501"], ["run", ",", "100"], ["prepare", "/nonexistent-data"]],  # fmt: skip
)
def test_script_refuses_a_bad_call_before_touching_anything(args: list[str], tmp_path: Path) -> None:
    repo = tmp_path / "repo"  # a copy: a regression must not wipe the real checkout's .device
    shutil.copytree(DEVICE, repo / "scripts" / "device")
    (repo / ".device").mkdir()
    (repo / ".device" / "kept").write_text("prepared")
    out = tmp_path / "out"
    out.mkdir()
    env = {"OUT": str(out), "WORK": str(tmp_path / "work"), "PATH": "/usr/bin:/bin"}
    script = repo / "scripts" / "device" / "train.sh"
    done = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(out.iterdir()) and not (tmp_path / "work").exists()
    assert (repo / ".device" / "kept").read_text() == "prepared"


def _helpers(*args: str) -> None:
    subprocess.run([sys.executable, str(DEVICE / "helpers.py"), *args], check=True, capture_output=True)


def test_jpeg_keeps_a_data_folder_readable(tmp_path: Path) -> None:
    from facetool.data.common import save_png
    from facetool.data.datasets import ManifestDataset

    folder = tmp_path / "crops"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        path = f"photo/{i:06d}.png"
        image = np.full((16, 16, 3), 40 * i + 20, np.uint8) + rng.integers(0, 5, (16, 16, 3), dtype=np.uint8)
        digest = save_png(folder / path, image)
        lines.append(json.dumps({"id": f"{i:06d}", "file": path, "files": {"photo": {"path": path, "sha256": digest}},
                                 "labels": {"hair": "brown"}}))  # fmt: skip
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    _helpers("jpeg", str(folder))
    items = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [it["file"] for it in items] == [f"photo/{i:06d}.jpg" for i in range(3)]
    assert not list(folder.rglob("*.png"))
    for item in items:
        assert item["labels"] == {"hair": "brown"}
        assert item["files"]["photo"]["path"] == item["file"]
    data = ManifestDataset(folder, roles=("photo",), split=None, size=16)
    assert len(data) == 3
    first = data[0]["photo"]
    assert first.shape == (3, 16, 16) and abs(float(first.mean()) * 255 - 22) < 3  # the pixels survive JPEG


def test_shim_registers_every_plugin_of_pyproject(tmp_path: Path) -> None:
    import tomllib

    _helpers("shim", str(tmp_path))
    (dist,) = metadata.distributions(path=[str(tmp_path)])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dist.metadata["Name"] == "facetool" and dist.version == project["version"]
    found = {ep.name: ep.value for ep in dist.entry_points if ep.group == "facetool"}
    assert found == project["entry-points"]["facetool"]
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == project["scripts"]
