"""Strict YAML loading: safe constructors only, duplicate keys rejected, CloudFormation short tags.

Two loaders share the duplicate-key check:
- ``load_vars`` for variables files: plain YAML, no custom tags at all;
- ``load_template`` for rendered CloudFormation: ``!Ref``, ``!Sub``, ``!GetAtt``... become their
  long forms (``{"Ref": ...}``, ``{"Fn::Sub": ...}``), so tests and checks see one shape.

Both build what PyYAML's safe loader builds (merge keys, anchors and every YAML 1.1 type included),
about twice as fast: tests/test_cfn_yaml.py holds them to PyYAML's own constructors.
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
_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _StrictLoader(_Base):  # type: ignore[misc, valid-type]
    def get_single_data(self) -> Any:
        # libyaml parses and composes; the nodes are then built here, strings, mappings and
        # sequences directly (most of a template), every other tag by PyYAML's own constructors.
        # PyYAML's generic construction costs more than parsing; this is half the time.
        node = self.get_single_node()
        if node is None:
            return None
        self._built: dict[int, Any] = {}
        try:
            return self._build(node)
        finally:
            self._built = {}

    def _build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        built = self._built
        if id(node) in built:  # an alias: the object its anchor made
            return built[id(node)]
        if tag == _MAP:
            mapping: dict[Any, Any] = {}
            built[id(node)] = mapping
            for key_node, value_node in node.value:
                if key_node.tag == _STR:  # strings inline: most keys and values are
                    key = key_node.value
                elif key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    del built[id(node)]  # merge keys, complex keys: PyYAML's own way
                    return self._construct(node)
                else:
                    key = self._build(key_node)
                mapping[key] = value_node.value if value_node.tag == _STR else self._build(value_node)
            if len(mapping) != len(node.value):
                self._refuse_duplicates(node, True)
            return mapping
        if tag == _SEQ:
            sequence: list[Any] = []
            built[id(node)] = sequence
            sequence.extend([item.value if item.tag == _STR else self._build(item) for item in node.value])
            return sequence
        return self._construct(node)  # numbers, booleans, null, short forms...

    def _construct(self, node: yaml.Node) -> Any:
        value = self.construct_object(node, deep=True)
        self._built[id(node)] = value
        return value

    # Tag resolution, called by libyaml's composer for every node: PyYAML's rules (implicit
    # resolvers by first character) without its path resolvers, which no loader here has.
    _implicit: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                table = type(self)._implicit or type(self)._implicit_table()
                for tag, regexp in table.get(value[:1], table[None]):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    @classmethod
    def _implicit_table(cls) -> dict[Any, tuple[tuple[str, re.Pattern[str]], ...]]:
        assert not cls.yaml_path_resolvers
        resolvers = cls.yaml_implicit_resolvers
        wildcard = list(resolvers.get(None, []))
        cls._implicit = {key: tuple(found + wildcard) for key, found in resolvers.items()}
        cls._implicit[None] = tuple(wildcard)
        return cls._implicit

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
            if key_node.tag == _MERGE:  # merged keys may be overridden, explicit ones not repeated
                continue
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


def walk(node: Any) -> Iterator[Any]:
    """Every node of a parsed document, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def _named(key: str, value: Any) -> tuple[list[str], list[Any]] | None:
    """(the IDs an intrinsic names, the nodes under it still to walk) for Ref, Fn::GetAtt and
    Fn::Sub; None for anything else."""
    if key == "Ref" and isinstance(value, str):
        return [value.split(".", 1)[0]], []  # SAM: !Ref Function.Version
    if key == "Fn::GetAtt":
        target = value[0] if isinstance(value, list) and value else value
        return ([target.split(".", 1)[0]] if isinstance(target, str) else []), []
    if key == "Fn::Sub":
        text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
        local_names = set(local) if isinstance(local, dict) else set()
        variables = _SUB_VAR.findall(text) if isinstance(text, str) else []
        names = [var.split(".", 1)[0].strip() for var in variables]
        return [n for n in names if n not in local_names], [local]
    return None


def references(node: Any) -> Iterator[str]:
    """Logical IDs (and pseudo parameters such as AWS::Region) named by Ref, Fn::GetAtt and
    Fn::Sub anywhere under ``node``, depth first; Fn::Sub's own variables are not references."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found = _named(*next(iter(node.items()))) if len(node) == 1 else None
            if found is not None:
                yield from found[0]
                stack.extend(found[1])
                continue
            stack.extend(reversed(node.values()))
        elif isinstance(node, list):
            stack.extend(reversed(node))
