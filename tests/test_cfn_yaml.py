"""The strict loaders build exactly what PyYAML's safe loader builds, and refuse duplicate keys.

tracker_infra/cfn_yaml.py builds strings, mappings and sequences itself (for speed) and resolves
tags with its own copy of PyYAML's rules; these tests hold both to PyYAML's own constructors.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker_infra import cfn_yaml
from tracker_infra.rendering import ROOT


class Reference(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader with the short-form tags: what a template should become."""


for _short, _long in cfn_yaml._TAGS.items():
    Reference.add_constructor(f"!{_short}", cfn_yaml._make_constructor(_long))


def reference(text: str) -> Any:
    return yaml.load(text, Loader=Reference)  # noqa: S506 - a SafeLoader


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not True, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # NaN


FILES = sorted([*ROOT.glob("rendered/*/*.yaml"), *ROOT.glob("bootstrap/*.yaml")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_template_loads_as_pyyaml_loads_it(path: Path) -> None:
    text = path.read_text()
    assert same(cfn_yaml.load_template(text), reference(text))


@pytest.mark.parametrize("path", sorted(ROOT.glob("vars/*.yaml")), ids=lambda p: p.name)
def test_every_vars_file_loads_as_pyyaml_loads_it(path: Path) -> None:
    text = path.read_text()
    assert same(cfn_yaml.load_vars(text), yaml.safe_load(text))


CORNERS = {
    "implicit types": "a: yes\nb: No\nc: ~\nd: 0x1F\ne: 0o17\nf: 1_000\ng: 1e3\nh: .inf\n"
                      "i: -.NaN\nj: 2001-12-14\nk: 2001-12-14t21:59:43.10-05:00\nl: ''\nm: '1'\n"
                      "n: 1:20\no: 0b101\np: +12\nr: null\ns: ''\n",
    "explicit tags": "a: !!str 1\nb: !!int '7'\nc: !!float '2'\nd: !!binary aGVsbG8=\n"
                     "e: !!set {x, y}\nf: !!omap [{x: 1}, {y: 2}]\ng: !!null ''\n",
    "anchors and aliases": "base: &b {x: 1, y: [1, 2]}\nsame: *b\nlist: &l [a, *b]\nagain: *l\n",
    "merge keys": "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\n  z: 4\n",
    "complex key": "? [a, b]\n: pair\n",  # refused by both: a list is no dict key
    "value key": "q: =\n",  # refused by both: PyYAML resolves '=' to a tag it cannot build
    "short forms": "Resources:\n  A:\n    Value: !Sub ['${X}', {X: !Ref Y}]\n    B: !GetAtt C.Arn\n"
                   "    D: !If [Cond, !Join ['', [a, !Ref B]], !Ref AWS::NoValue]\n"
                   "    E: !Equals [!Select [0, !GetAZs ''], x]\n",
    "flow and block": "a: {b: [1, {c: d}], e: 'f'}\nlist:\n- - 1\n  - 2\n- {}\n- []\n",
    "empty document": "",
    "scalar document": "just text\n",
    "multi-line strings": "a: |\n  one\n  two\nb: >-\n  folded\n  text\nc: \"esc\\taped\\u00e9\"\n",
}


def outcome(load: Any, text: str) -> tuple[str, Any]:
    try:
        return "built", load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return "refused", (getattr(exc, "problem", str(exc)), mark and (mark.line, mark.column))


@pytest.mark.parametrize("name", CORNERS)
def test_yaml_corners_load_as_pyyaml_loads_them(name: str) -> None:
    text = CORNERS[name]
    ours, theirs = outcome(cfn_yaml.load_template, text), outcome(reference, text)
    assert ours[0] == theirs[0]
    assert same(ours[1], theirs[1]) if ours[0] == "built" else ours[1] == theirs[1]


def test_an_alias_is_the_object_its_anchor_made() -> None:
    doc = cfn_yaml.load_template("a: &x [1, 2]\nb: *x\n")
    assert doc["a"] is doc["b"]
    loop = cfn_yaml.load_template("&x [1, *x]\n")
    assert loop[1] is loop


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "off", "~", "0x1F", "1e3", "2001-12-14", "1:20", "<<", "-", ""]),
    st.dates(), st.datetimes(timezones=st.just(datetime.UTC)),
)
_data = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.booleans()), inner, max_size=4),
), max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(data=_data, flow=st.sampled_from([None, True, False]))
def test_any_dumped_document_loads_as_pyyaml_loads_it(data: Any, flow: bool | None) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert same(cfn_yaml.load_template(text), reference(text))
    assert same(cfn_yaml.load_vars(text), yaml.safe_load(text))


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",
    "outer:\n  - inner: {x: 1, x: 2}\n",
    "base: &b {x: 1}\nm:\n  <<: *b\n  y: 1\n  y: 2\n",
    "Resources:\n  A: !Sub ['${X}', {X: 1, X: 2}]\n",
    "1: a\n1: b\n",
])
def test_a_duplicate_key_is_refused_at_any_depth(text: str) -> None:
    with pytest.raises(cfn_yaml.DuplicateKeyError, match="found duplicate key"):
        cfn_yaml.load_template(text)
    with pytest.raises(yaml.YAMLError):
        cfn_yaml.load_vars(text.replace("!Sub ", ""))
