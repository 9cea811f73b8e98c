"""Each partial's header names what it provides and what it uses from elsewhere, and is right.

A partial opens with a ``{#- ... -#}`` comment holding two lists:

    Provides: VPC, PublicSubnet1, NatGateway<n>, ...
    Uses: StackKey (kms), ApiSecurityGroup (network), DeletionProtected (app.yaml.j2), ...

``Provides`` names every parameter, condition and resource the partial's macros render, computed
ids in full (``<n>`` stands for a number: one per address, per NAT gateway); ``Uses`` names every
id its parameters, conditions, resources and outputs reference that it does not provide, each with
the partial or template that provides it. The test renders each partial's macros on their own for
every environment and a few variants (a Route 53 zone, the other lifecycle) and compares: a new
cross-partial reference without a header line fails here, and so does a header line that names
something no longer there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest

from tests.helpers import ENVS, config, config_with
from tracker_infra.cfn_yaml import load_template, references
from tracker_infra.rendering import PARTIALS, ROOT, context, jinja_environment, stacks

SECTIONS = ("parameters", "conditions", "resources", "outputs")
LAYERS = sorted(p.name.removesuffix(".yaml.j2") for p in PARTIALS.glob("*.yaml.j2")
                if p.name != "macros.yaml.j2")


def _names_in_conditions(node: Any) -> set[str]:
    """Condition names used by Fn::If and Condition, and the resources a DependsOn names
    (references() covers Ref, GetAtt and Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::If":
                found.add(value[0])
            elif key == "Condition" and isinstance(value, str):
                found.add(value)
            elif key == "DependsOn":
                found |= {value} if isinstance(value, str) else set(value)
            found |= _names_in_conditions(value)
    elif isinstance(node, list):
        for value in node:
            found |= _names_in_conditions(value)
    return found


def _variants() -> list[Any]:
    out = []
    for env in ENVS:
        cfg = config(env)
        out += [cfg, config_with(env, {"dns": {"hosted_zone_id": "Z0123456789ABCDEFGHIJ"}}),
                config_with(env, {"lifecycle": "disposable" if cfg.protected else "protected"})]
    return out


@pytest.fixture(scope="module")
def actual() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """(provides, uses, template ids) by partial, as rendered."""
    env = jinja_environment()
    provides: dict[str, set[str]] = defaultdict(set)
    used: dict[str, set[str]] = defaultdict(set)
    template_ids: dict[str, set[str]] = defaultdict(set)
    for cfg in _variants():
        for stack in stacks(cfg):
            template = f"{stack.key}.yaml.j2"
            source = (ROOT / "templates" / template).read_text()
            rendered = load_template(env.get_template(template).render(context(cfg, stack)))
            template_ids[template] |= set(rendered.get("Parameters", {}))
            template_ids[template] |= set(rendered.get("Conditions", {}))
            for layer in re.findall(r'import "(\w+)\.yaml\.j2" as', source):
                if layer == "macros":
                    continue
                module = env.get_template(f"{layer}.yaml.j2").make_module(context(cfg, stack))
                for section in SECTIONS:
                    if not hasattr(module, section):
                        continue
                    key = section.capitalize()
                    body = (load_template(f"{key}:\n{getattr(module, section)()}") or {}).get(key) or {}
                    if section != "outputs":
                        provides[layer] |= set(body)
                    used[layer] |= {r for r in set(references(body)) | _names_in_conditions(body)
                                    if not r.startswith("AWS::")}
    for layer in used:
        used[layer] -= provides[layer]
    for template in template_ids:  # what a template declares itself, besides its partials
        template_ids[template] -= set().union(*provides.values())
    return provides, used, template_ids


def header(layer: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(provided ids, [(used id, source)]) as the partial's header states them."""
    text = (PARTIALS / f"{layer}.yaml.j2").read_text()
    match = re.match(r"\{#-(.*?)-#\}", text, re.S)
    assert match, f"{layer}.yaml.j2 does not open with a {{#- ... -#}} header"
    comment = match[1]

    def field(name: str) -> str:
        found = re.search(rf"^\s*{name}:(.*?)(?=^\s*\w+:|\Z)", comment, re.S | re.M)
        return found[1] if found else ""

    provided = re.findall(r"[A-Za-z][\w<>]*", field("Provides"))
    uses = re.findall(r"([A-Za-z][\w<>]*)\s*\(([\w.]+)\)", field("Uses"))
    return provided, uses


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace("<n>", r"\d+"), name) is not None


@pytest.mark.parametrize("layer", LAYERS)
def test_the_header_names_exactly_what_the_partial_provides(actual: Any, layer: str) -> None:
    provides = actual[0][layer]
    listed, _ = header(layer)
    assert [n for n in sorted(provides) if not any(_matches(p, n) for p in listed)] == [], \
        f"provided by {layer}.yaml.j2 but not in its header's Provides"
    assert [p for p in listed if not any(_matches(p, n) for n in provides)] == [], \
        f"in {layer}.yaml.j2's Provides but never rendered"


@pytest.mark.parametrize("layer", LAYERS)
def test_the_header_names_what_the_partial_uses_and_where_it_comes_from(actual: Any, layer: str) -> None:
    provides, used, template_ids = actual
    _, listed = header(layer)
    assert sorted(used[layer] - {name for name, _ in listed}) == [], \
        f"used by {layer}.yaml.j2 but not in its header's Uses"
    for name, source in listed:
        assert name in used[layer], f"{layer}.yaml.j2 lists {name} in Uses but does not use it"
        owner = template_ids[source] if source.endswith(".yaml.j2") else provides[source]
        assert name in owner, f"{layer}.yaml.j2 says {name} comes from {source}; it does not"


def test_the_header_check_notices_a_missing_line(actual: Any) -> None:
    """Guards the guard: the computed sets are not empty where the layers meet."""
    provides, used, _ = actual
    assert "StackKey" in used["network"] and "StackKey" in provides["kms"]
    assert {"ApiDatabaseSecret", "PrivateSubnet1"} <= used["api_service"]
    assert "DeletionProtected" in used["api_load_balancer"]
    assert any(_matches("NatGateway<n>Eip", n) for n in provides["network"])
    assert not _matches("NatGateway<n>Eip", "NatGatewayEip")
