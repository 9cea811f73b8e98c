"""One read-only view of a parsed CloudFormation template, shared by the review commands and the
tests: resources by type, their properties, and who references whom."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..cfn_yaml import references
from ..rendering import Stack


def ref_target(node: Any) -> str | None:
    """The logical ID when ``node`` is exactly one Ref or Fn::GetAtt, else None."""
    if isinstance(node, dict) and len(node) == 1 and ("Ref" in node or "Fn::GetAtt" in node):
        return next(references(node), None)
    return None


def _depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn") or []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


@dataclass
class Template:
    """A parsed template (long-form intrinsics) and its reference graph: resource -> the
    resources its Properties name (``refs``) and its DependsOn (``depends``)."""

    doc: dict[str, Any]
    stack: Stack | None = None

    @cached_property
    def refs(self) -> dict[str, set[str]]:
        ids = set(self.resources)
        return {rid: {r for r in references(self.props(rid)) if r in ids} - {rid}
                for rid in self.resources}

    @cached_property
    def depends(self) -> dict[str, set[str]]:
        ids = set(self.resources)
        return {rid: {d for d in _depends_on(res) if d in ids} for rid, res in self.resources.items()}

    @cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        found = self.doc.get("Resources") if isinstance(self.doc, dict) else None
        return found if isinstance(found, dict) else {}

    @cached_property
    def _types(self) -> dict[str, str]:
        return {rid: str(res.get("Type", "")) for rid, res in self.resources.items()}

    def type(self, rid: str) -> str:
        return self._types[rid]

    def props(self, rid: str) -> dict[str, Any]:
        props = self.resources[rid].get("Properties")
        return props if isinstance(props, dict) else {}

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """Logical ID -> Properties of every resource of the given types (all when none given)."""
        return {rid: self.props(rid) for rid in self.resources if not types or self.type(rid) in types}

    def node_id(self, rid: str) -> str:
        return f"{self.stack.key if self.stack else 'stack'}_{rid}"
