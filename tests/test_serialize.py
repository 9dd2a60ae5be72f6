"""The one JSON serializer (ivigmeta.serialize) and the contract it writes (docs/json.md)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from conftest import ROOT

from ivigmeta.results import HeterogeneityCI, MetaAnalysis, NotApplicable, TrimFill
from ivigmeta.serialize import Flatten, Group, Key, keys_of, null_keys, to_json, to_json_dict

# ---------------------------------------------------------------------------------------------
# The layout entries, on small stand-in classes.


@dataclass(frozen=True)
class Inner:
    a: float
    b: float | None = None

    __json__: ClassVar = ("a", "b")


@dataclass(frozen=True)
class Plain:
    x: int
    items: tuple[Inner, ...] = ()


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner | None
    flag: bool = False
    pairs: tuple[tuple[str, str], ...] = ()

    @property
    def doubled(self) -> float | None:
        return None if self.inner is None else 2 * self.inner.a

    __json__: ClassVar = (
        "name",
        Key("renamed", "name"),
        Key("deep", "inner.b", default=-1),
        Key("only_if_flag", "name", when="flag"),
        Key("unless_flag", "name", unless="flag"),
        Key("doubled", omit_none=True),
        Flatten("inner", when_none={"a": None}),
        Key("b", "doubled"),  # replaces the flattened b, in b's place
        Group("sub", (Key("first", "inner.a"), "flag")),
        "pairs",
    )


def test_keys_in_layout_order_with_renames_paths_and_conditions() -> None:
    out = to_json_dict(Outer("s", Inner(1.5, 0.25), flag=True, pairs=(("k", "v"),)))
    assert list(out) == [
        "name",
        "renamed",
        "deep",
        "only_if_flag",
        "doubled",
        "a",
        "b",
        "sub",
        "pairs",
    ]
    assert out["renamed"] == "s" and out["deep"] == 0.25 and out["doubled"] == 3.0
    assert out["a"] == 1.5 and out["b"] == 3.0
    assert out["sub"] == {"first": 1.5, "flag": True}
    assert out["pairs"] == [["k", "v"]]  # tuples become lists, as JSON has them


def test_a_path_through_none_gives_the_default_and_flatten_its_placeholder() -> None:
    out = to_json_dict(Outer("s", None))
    assert out["deep"] == -1
    assert "doubled" not in out  # omit_none
    assert "only_if_flag" not in out and out["unless_flag"] == "s"
    assert out["a"] is None
    assert out["b"] is None  # the key written after the flatten, its value None
    assert out["sub"] == {"first": None, "flag": False}


def test_a_dataclass_without_layout_is_written_field_by_field_recursively() -> None:
    out = to_json(Plain(3, (Inner(1.0), Inner(2.0, 4.0))))
    assert out == {"x": 3, "items": [{"a": 1.0, "b": None}, {"a": 2.0, "b": 4.0}]}


def test_full_precision_and_non_finite_values_are_kept_for_the_writer() -> None:
    x = 0.1 + 0.2
    out = to_json_dict(Inner(x, math.inf))
    assert out["a"] == x and out["a"] != 0.3 and out["b"] == math.inf


def test_an_explicit_layout_applies_to_each_item_of_a_sequence() -> None:
    @dataclass(frozen=True)
    class Holder:
        rows: tuple[Inner, ...]

        __json__: ClassVar = (Key("rows", layout=(Key("value", "a"),)),)

    assert to_json_dict(Holder((Inner(1.0), Inner(2.0)))) == {
        "rows": [{"value": 1.0}, {"value": 2.0}]
    }


def test_helpers_and_errors() -> None:
    assert keys_of("fit", "theta", "se") == (Key("theta", "fit.theta"), Key("se", "fit.se"))
    assert null_keys(("k", Key("q", "het.q"), Group("g", ()))) == {"k": None, "q": None}
    with pytest.raises(TypeError, match="no JSON layout"):
        to_json_dict(object())
    with pytest.raises(TypeError, match="not a JSON layout entry"):
        to_json_dict(Inner(1.0), (42,))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Values the result objects derive for the JSON and the tables.


def test_derived_values_live_in_results(paper_fit: MetaAnalysis) -> None:
    ci = paper_fit.heterogeneity.ci
    assert isinstance(ci, HeterogeneityCI)
    assert ci.tau_ci == (math.sqrt(ci.tau2_low), math.sqrt(ci.tau2_high))
    totals = paper_fit.totals
    studies = paper_fit.effects.studies
    assert totals is not None and totals.n == sum(s.n for s in studies)
    assert totals.treat_events == sum(s.treat_events for s in studies)
    assert paper_fit.options.level_percent == pytest.approx(95.0)
    assert paper_fit.fit is paper_fit.random
    assert to_json_dict(NotApplicable("egger", "k < 3")) == {
        "applicable": False,
        "reason": "k < 3",
    }


def test_trimfill_filled_studies_are_back_transformed(paper_fit: MetaAnalysis) -> None:
    from ivigmeta.methods.trimfill import trim_and_fill

    tf = trim_and_fill(paper_fit)
    assert isinstance(tf, TrimFill)
    for s, y, v in zip(tf.filled, tf.filled_yi, tf.filled_vi):
        assert s.estimate == math.exp(y) and s.se == math.sqrt(v)


# ---------------------------------------------------------------------------------------------
# docs/json.md names every key each command writes.

_COMMANDS = {
    "pool": ["pool"],
    "heterogeneity": ["heterogeneity"],
    "loo": ["loo"],
    "subgroup": ["subgroup", "--by", "nk_criterion", "--by", "timing"],
    "bias": ["bias", "--measure", "OR"],
    "metareg": ["metareg", "--mod", "nk_criterion"],
    "cumulative": ["cumulative"],
    "influence": ["influence"],
    "rob": ["rob", str(ROOT / "docs" / "examples" / "rob_example.csv")],
    "reproduce": ["reproduce", str(ROOT / "published.toml"), "--no-explain"],
    "aggregate": ["aggregate", "--cluster", "nk_criterion", "--rho", "0.5"],
    "selmodel": ["selmodel", "--type", "stepfun", "--steps", "0.05"],
    "matrix": ["matrix", "--type", "resid", "--mod", "nk_criterion"],
    "combine": ["combine", "--weights", "year"],
    "rve": ["rve", "--cluster", "nk_criterion"],
    "pool-transf-int": ["pool", "--transf-int"],
    "transf": ["transf", "ipft.hm", "0.3", "0.5", "--n", "10", "--n", "20"],
    "transf-int": ["transf", "exp.int", "0", "--tau2", "0.1", "--lower", "-3", "--upper", "3"],
}
# Objects whose keys are data (the paper's own table, column names, levels), not the schema.
_DATA_KEYS = {"paper", "references", "percent", "recomputed", "value", "fields", "at"}


def _doc_names(command: str) -> set[str]:
    doc = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", doc, flags=re.M)
    shared = [p for p in parts if not p.startswith("`ivigmeta ")]  # conventions, added keys
    own = [p for p in parts if p.startswith(f"`ivigmeta {command}`")]
    text = "\n".join(shared + own)
    return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', text)) | set(
        re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", text)
    )


def _keys(obj: Any, out: set[str]) -> set[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            if k not in _DATA_KEYS:
                _keys(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _keys(v, out)
    return out


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_json_key_is_documented(run, studies_path, command: str) -> None:
    args = _COMMANDS[command]
    if command not in ("rob", "reproduce", "transf", "transf-int"):
        args = [args[0], str(studies_path), *args[1:]]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    keys = _keys(json.loads(result.stdout), set())
    undocumented = keys - _doc_names(args[0])
    assert not undocumented, f"docs/json.md lacks {sorted(undocumented)} for {command}"


def test_location_scale_json_keys_are_documented(run, studies_path) -> None:
    result = run(
        "metareg", str(studies_path), "--mod", "timing", "--scale", "nk_criterion", "--att",
        "nk_criterion", "--predict-scale", "nk_criterion=yes", "--scale-profile", "--scale-lrt",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    keys = _keys(json.loads(result.stdout), set())
    undocumented = keys - _doc_names("metareg")
    assert not undocumented, f"docs/json.md lacks {sorted(undocumented)} for metareg --scale"
