"""Secrets in the clear: a secret that a change puts where anyone who can read the stack reads it.

A value is a secret when it is a dynamic reference to one (``{{resolve:secretsmanager:...}}``,
``{{resolve:ssm-secure:...}}``: CloudFormation resolves it into the plain property), or when its
name says password, secret, token or key and its value is written out (a literal, not a
reference to a secret's ARN or name; names ending in ARN, ID or NAME hold such references).
The places where it is in the clear:

  a container's plain ``Environment`` (ECS ``ContainerDefinitions``): shown by DescribeTaskDefinition
      to anyone with ecs:Describe*; secrets belong in ``Secrets`` (ECS Developer Guide, "Pass
      sensitive data to an Amazon ECS container");
  a function's ``Environment.Variables`` (Lambda, SAM): shown by GetFunctionConfiguration (Lambda
      Developer Guide, "Securing environment variables");
  a parameter's ``Default`` and an output's ``Value``: shown by DescribeStacks and the console
      (CloudFormation User Guide, "Do not embed credentials in your templates").

Each secret in one of these places on the new side that was not there on the old WIDENS
(category "secrets").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .values import compact, is_intrinsic
from .widening import Widening

DYNAMIC = re.compile(r"\{\{resolve:(secretsmanager|ssm-secure):", re.I)
SECRET_NAME = re.compile(r"(^|[^a-z])(password|passwd|secret|token|key)([^a-z]|$)", re.I)
REFERENCE_NAME = re.compile(r"[_-]?(arn|id|name)$", re.I)

# The properties this module judges, as unjudged.py writes paths.
PATHS = {"AWS::ECS::TaskDefinition": ("ContainerDefinitions.*.Environment",),
         "AWS::Lambda::Function": ("Environment.Variables",),
         "AWS::Serverless::Function": ("Environment.Variables",)}

Found = tuple[str, str, str, str]  # (logical id, type, where, name)


def _secret(name: str, value: Any) -> str:
    """Why this value is a secret in the clear ("" if it is not)."""
    text = value if isinstance(value, str) else compact(value, 10_000)
    if DYNAMIC.search(text):
        return "a dynamic reference to a secret"
    literal = isinstance(value, (str, int)) and not is_intrinsic(value) and str(value) != ""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # DbPassword: Db_Password
    if literal and SECRET_NAME.search(words) and not REFERENCE_NAME.search(words):
        return "a secret-named value written out"
    return ""


def _variables(rid: str, type_: str, props: dict[str, Any]) -> Iterator[tuple[Found, str, Any]]:
    if type_ == "AWS::ECS::TaskDefinition":
        for container in props.get("ContainerDefinitions") or []:
            if not isinstance(container, dict):
                continue
            where = f"container {container.get('Name')} Environment"
            for item in container.get("Environment") or []:
                if isinstance(item, dict):
                    yield (rid, type_, where, str(item.get("Name"))), str(item.get("Name")), item.get("Value")
    elif type_ in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
        variables = (props.get("Environment") or {}).get("Variables") or {}
        for name, value in (variables.items() if isinstance(variables, dict) else []):
            yield (rid, type_, "Environment.Variables", name), name, value


def _places(doc: dict[str, Any]) -> Iterator[tuple[Found, str, Any]]:
    for rid, resource in (doc.get("Resources") or {}).items():
        if isinstance(resource, dict) and isinstance(resource.get("Properties"), dict):
            yield from _variables(rid, str(resource.get("Type")), resource["Properties"])
    for name, param in (doc.get("Parameters") or {}).items():
        if isinstance(param, dict) and "Default" in param:
            yield (name, "parameter", "Default", name), name, param["Default"]
    for name, output in (doc.get("Outputs") or {}).items():
        if isinstance(output, dict):
            yield (name, "output", "Value", name), name, output.get("Value")


def _secrets(doc: dict[str, Any]) -> dict[tuple[Found, str], str]:
    found = {}
    for place, name, value in _places(doc):
        why = _secret(name, value)
        if why:
            found[(place, compact(value, 10_000))] = why
    return found


def cleartext(old: dict[str, Any], new: dict[str, Any]) -> list[Widening]:
    """Every secret the new template has in the clear that the old one did not have there."""
    before = _secrets(old)
    out = []
    for key, why in sorted(_secrets(new).items()):
        if key not in before:
            (rid, type_, where, name), _ = key
            out.append(Widening("secrets", "secret-in-the-clear", rid, type_,
                                f"{where} {name}: {why}, readable by anyone who can describe it"))
    return out
