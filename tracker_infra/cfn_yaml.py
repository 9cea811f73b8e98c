"""Strict YAML loading: safe constructors only, duplicate keys rejected, CloudFormation short tags.

Two loaders share the duplicate-key check:
- ``load_vars`` for variables files: plain YAML, no custom tags at all;
- ``load_template`` for rendered CloudFormation: ``!Ref``, ``!Sub``, ``!GetAtt``... become their
  long forms (``{"Ref": ...}``, ``{"Fn::Sub": ...}``), so tests and checks see one shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~9x faster where present


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


_MERGE = "tag:yaml.org,2002:merge"


class _StrictLoader(_Base):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Fast path: a mapping without merge keys holds a duplicate exactly when it comes out
        # with fewer entries than the node has pairs; only then are the keys looked at one by one.
        pairs = len(node.value)
        if any(key.tag == _MERGE for key, _ in node.value):
            self._refuse_duplicates(node, deep)
            return super().construct_mapping(node, deep=deep)
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) != pairs:
            self._refuse_duplicates(node, deep)
        return mapping

    def _refuse_duplicates(self, node: yaml.MappingNode, deep: bool) -> None:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )
            seen.add(key)


class VarsLoader(_StrictLoader):
    """Plain YAML with duplicate keys rejected."""


class TemplateLoader(_StrictLoader):
    """CloudFormation YAML: short-form intrinsic functions become their long forms."""


_TAGS = {
    "Ref": "Ref", "Condition": "Condition",
    "GetAtt": "Fn::GetAtt", "Sub": "Fn::Sub", "Join": "Fn::Join", "Select": "Fn::Select",
    "Split": "Fn::Split", "If": "Fn::If", "Equals": "Fn::Equals", "Not": "Fn::Not",
    "And": "Fn::And", "Or": "Fn::Or", "FindInMap": "Fn::FindInMap", "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr", "ImportValue": "Fn::ImportValue", "GetAZs": "Fn::GetAZs",
    "Transform": "Fn::Transform", "Length": "Fn::Length", "ToJsonString": "Fn::ToJsonString",
}


def _make_constructor(long_name: str) -> Any:
    def construct(loader: TemplateLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _TAGS.items():
    TemplateLoader.add_constructor(f"!{_short}", _make_constructor(_long))


def load_vars(text: str) -> Any:
    return yaml.load(text, Loader=VarsLoader)  # noqa: S506 - VarsLoader is a SafeLoader


def load_template(text: str) -> Any:
    return yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - TemplateLoader is a SafeLoader


_SUB_VAR = re.compile(r"\$\{([^!}][^}]*)\}")


def references(node: Any) -> Iterator[str]:
    """Logical IDs (and pseudo parameters such as AWS::Region) named by Ref, Fn::GetAtt and
    Fn::Sub anywhere under ``node``; Fn::Sub's own variables are not references."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref" and isinstance(value, str):
                yield value.split(".", 1)[0]  # SAM: !Ref Function.Version
                return
            if key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) and value else value
                if isinstance(target, str):
                    yield target.split(".", 1)[0]
                return
            if key == "Fn::Sub":
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                local_names = set(local) if isinstance(local, dict) else set()
                if isinstance(text, str):
                    for var in _SUB_VAR.findall(text):
                        name = var.split(".", 1)[0].strip()
                        if name not in local_names:
                            yield name
                yield from references(local)
                return
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)
