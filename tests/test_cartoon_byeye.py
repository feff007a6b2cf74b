"""--hair auto scored against hair colours a person named (facetool_cartoon.byeye)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest


def test_three_across_puts_the_person_between_two_neighbours():
    from facetool_cartoon.byeye import three_across

    photos = [np.full((20, 30, 3), value, np.uint8) for value in (10, 128, 250)]
    centres = [np.array([15.0, 10.0]), np.array([12.0, 10.0]), np.array([18.0, 10.0])]
    canvas, offset = three_across(photos, centres, spacing=25.0)
    assert canvas.shape == (20, 80, 3) and offset == 25.0
    person_x = offset + 12.0
    assert (canvas[:, int(person_x) - 12 : int(person_x) + 12] == 128).all()  # nearest to the person's face
    assert (canvas[:, : int(person_x) - 13] == 10).all() and (canvas[:, int(person_x) + 13 :] == 250).all()


@pytest.mark.parametrize("crowd", [False, True])
def test_hair_by_eye_scores_the_pick_against_the_named_colours(tmp_path, monkeypatch, crowd):
    import facetool_cartoon.hair as hair
    from facetool_cartoon.byeye import hair_by_eye

    from facetool.data.common import save_png

    rng = np.random.default_rng(0)
    points5 = [[80, 100], [130, 100], [105, 125], [85, 150], [125, 150]]
    points68 = (np.array([[105.0, 120.0]]) + rng.normal(0, 25, (68, 2))).tolist()
    (tmp_path / "labels").mkdir()
    named, records = {}, []
    for stem, eye in (("a", ["blonde"]), ("b", ["black", "brown"]), ("c", ["none"]), ("d", None)):
        save_png(tmp_path / "photos" / f"{stem}.png", (rng.random((200, 210, 3)) * 255).astype(np.uint8))
        sha = hashlib.sha256((tmp_path / "photos" / f"{stem}.png").read_bytes()).hexdigest()
        records.append({"id": stem, "file": f"photos/{stem}.png", "sha256": sha})
        faces = [{"box": [60, 70, 150, 180], "score": 1.0, "points5": points5, "points68": points68}]
        (tmp_path / "labels" / f"{stem}.json").write_text(json.dumps({"faces": faces}))
        if eye is not None:
            named[sha] = eye
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "eye.json").write_text(json.dumps({"faces": named}))
    seen = []
    monkeypatch.setattr(hair, "photo_hair", lambda crop, p5, p68: seen.append(crop.shape) or None)  # None: brown

    record = hair_by_eye(tmp_path, crowd=crowd, labels=tmp_path / "eye.json")
    # "none" (no hair to see) and the photo nobody named are left out; the brown pick is fair only for b
    assert record == {"faces": 2, "strict": 0.0, "lenient": 0.5, "misses": [["photos/a.png", "blonde", "brown"]]}
    assert seen == [(3, 128, 128)] * 2

    # drawn: the avatar's hair as the meter reads it, scored the same way (here the meter says blonde, then black)
    readings = iter(["blonde", "black"])
    monkeypatch.setattr(hair, "load_meter", lambda: None)
    monkeypatch.setattr(hair, "avatar_hair", lambda meter, avatars: [next(readings)] * len(avatars))
    drawn = hair_by_eye(tmp_path, crowd=crowd, labels=tmp_path / "eye.json",
                        drawn=lambda crops, p5, p68: crops * 0.5)  # fmt: skip
    assert drawn["drawn_strict"] == 1.0 and drawn["drawn_lenient"] == 1.0 and drawn["strict"] == 0.0
