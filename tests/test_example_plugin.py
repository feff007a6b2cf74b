"""The template plugin in examples/ installs like any third-party package and its method runs through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, require_assets


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
           str(target), str(ROOT / "examples" / "facetool-pencil")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    env.pop("FACETOOL_PLUGINS", None)
    return env


def facetool(env, *args):
    return subprocess.run([sys.executable, "-m", "facetool", *args], capture_output=True, text=True, env=env)


def test_plugin_is_listed(installed):
    proc = facetool(installed, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert plugins["pencil"]["distribution"] == "facetool-pencil"
    assert plugins["pencil"]["registered"] == {"method": ["pencil"]}
    methods = {m["name"]: m for m in json.loads(facetool(installed, "methods", "--json").stdout)}
    assert methods["pencil"]["task"] == "stylize"
    assert {o["name"] for o in methods["pencil"]["options"]} == {"blur", "darkness"}


def test_plugin_method_runs_through_the_cli(installed, tmp_path, sample_path):
    require_assets("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    from facetool.imageio import read_image

    out = tmp_path / "sketch.png"
    proc = facetool(installed, "stylize", str(sample_path), "--method", "pencil", "-O", "blur=4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    sketch, photo = read_image(out), read_image(sample_path)
    assert sketch.shape == photo.shape  # pasted back: the size of the input
    assert (sketch[400:, :100] == 255).all()  # far from the face: white paper
    face = sketch[90:180, 180:270].astype(float)
    assert face.mean() > 150 and (face < 100).mean() > 0.005  # mostly paper, with dark strokes

    crop = tmp_path / "crop.png"
    proc = facetool(installed, "stylize", str(sample_path), "-m", "pencil", "--crop", "--size", "128", "-o", str(crop))
    assert proc.returncode == 0, proc.stderr
    image = read_image(crop)
    assert image.shape == (128, 128, 3) and np.ptp(image) > 100

    proc = facetool(installed, "stylize", str(sample_path), "-m", "pencil", "-O", "blur=1000")
    assert proc.returncode == 2 and "blur must be" in proc.stderr
