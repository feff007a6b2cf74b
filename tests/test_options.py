from dataclasses import dataclass, field
from typing import Literal

import pytest

from facetool.errors import UsageError
from facetool.options import describe_options, parse_options


@dataclass
class Opts:
    size: int = 256
    strength: float = field(default=0.5, metadata={"help": "how strong"})
    mode: Literal["fast", "slow"] = "fast"
    flip: bool = True
    label: str | None = None


def test_parse_converts_types():
    o = parse_options(Opts, ["size=512", "strength=0.25", "mode=slow", "flip=no", "label=x"], "m")
    assert (o.size, o.strength, o.mode, o.flip, o.label) == (512, 0.25, "slow", False, "x")


def test_defaults_and_dashes():
    assert parse_options(Opts, [], "m") == Opts()
    assert parse_options(Opts, ["label=none"], "m").label is None


@pytest.mark.parametrize(
    "pair, words",
    [("nope=1", "unknown option 'nope' "), ("nope", "unknown option 'nope' "), ("size=big", "expects int"),
     ("mode=medium", "one of"), ("flip=maybe", "bool"),
     ("size", "needs a value: size=VALUE")],
)  # fmt: skip
def test_bad_options_are_usage_errors(pair, words):
    with pytest.raises(UsageError, match=words):
        parse_options(Opts, [pair], "method m")


def test_no_schema_refuses_options():
    assert parse_options(None, [], "m") is None
    with pytest.raises(UsageError):
        parse_options(None, ["a=1"], "m")


def test_describe():
    d = {o["name"]: o for o in describe_options(Opts)}
    assert d["strength"]["help"] == "how strong" and d["size"]["default"] == 256 and d["size"]["type"] == "int"
    assert d["mode"]["type"] == "fast | slow"  # a choice names its values
