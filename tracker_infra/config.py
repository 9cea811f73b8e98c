"""Load, merge and validate the variables files.

``vars/defaults.yaml`` holds what every environment shares; ``vars/<env>.yaml`` holds what differs.
Merge rule: mappings merge key by key (recursively); lists and scalars in the environment file
replace the default outright. The merged mapping is validated against ``schema.Config``.

Every problem becomes a ``UserError`` naming the file, the key path and the rule.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from pathlib import Path
from typing import Any

import yaml

from .cfn_yaml import load_vars
from .errors import UserError, UserErrors
from .schema import Config, cross_checks

DEFAULTS = "defaults.yaml"
MAX_VARS_BYTES = 256 * 1024  # a vars file is a few KB; anything near this is a mistake


def environments(vars_dir: Path) -> list[str]:
    """The environment names found in vars/ (every *.yaml except defaults.yaml), sorted."""
    if not vars_dir.is_dir():
        raise UserError(str(vars_dir), "", "no such folder (allowed: a folder holding "
                        "defaults.yaml and one <env>.yaml per environment)")
    return sorted(p.stem for p in vars_dir.glob("*.yaml") if p.name != DEFAULTS)


def read_yaml(path: Path) -> dict[str, Any]:
    """One vars file as a mapping; every way it can be unreadable is a one-line UserError."""
    name = str(path)
    if path.is_symlink():
        raise UserError(name, "", "is a symbolic link (allowed: a regular file in vars/, so a "
                        "review sees the values it renders)")
    try:
        size = path.stat().st_size
        if size > MAX_VARS_BYTES:
            raise UserError(name, "", f"is {size} bytes (allowed: up to {MAX_VARS_BYTES})")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(name, "", "no such file") from None
    except OSError as exc:
        raise UserError(name, "", f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM is harmless; drop it
    except UnicodeDecodeError as exc:
        raise UserError(name, "", f"byte {exc.start} is not UTF-8 (allowed: UTF-8 text)") from None
    try:
        data = load_vars(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise UserError(name, where, f"{exc.problem or exc.context} (allowed: plain YAML "
                        "mappings; no tabs for indentation, no duplicate keys, no tags)") from None
    except yaml.YAMLError as exc:
        raise UserError(name, "", f"is not YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise UserError(name, "", "is nested too deeply (allowed: a few levels)") from None
    if data is None:
        raise UserError(name, "", "is empty (allowed: a mapping of variables)")
    if not isinstance(data, dict):
        raise UserError(name, "", f"holds a {type(data).__name__} at the top (allowed: a mapping "
                        "of variables)")
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in ``override`` replaces ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _has_path(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows beside ``loc``'s last part (none inside free-form mappings)."""
    from pydantic import BaseModel

    model: Any = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        model = field.annotation if field else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return list(model.model_fields)


def _keys_at(data: Any, parent: tuple[Any, ...]) -> list[str]:
    for part in parent:
        data = data.get(part) if isinstance(data, dict) else None
    return [k for k in data if isinstance(k, str)] if isinstance(data, dict) else []


def _missing(key: str, loc: tuple[Any, ...], files: dict[Path, dict[str, Any]]) -> UserError:
    """A missing key: a near-miss key beside it in one of the files is the likely cause (blame
    that file), else the environment file should set it."""
    (defaults_file, _), (env_file, _) = files.items()
    known = _known_keys(loc)
    for path, data in files.items():
        near = [k for k in _keys_at(data, loc[:-1]) if k not in known]
        typo = difflib.get_close_matches(str(loc[-1]), near, n=1)
        if typo:
            return UserError(str(path), key, f"is missing: {path.name} sets {typo[0]!r} instead (a typo?)")
    return UserError(str(env_file), key, f"is missing (allowed: set it here or in {defaults_file})")


def _invalid(err: dict[str, Any], blamed: Path, key: str) -> UserError:
    """A value the schema refuses, in the house style: pydantic's "Input should be X" becomes
    "is <value> (allowed: X)"."""
    message = err["msg"].removeprefix("Value error, ")
    own = err["type"] in ("value_error", "assertion_error")
    if message.startswith("Input should be ") and not own:
        return UserError(str(blamed), key, f"is {err['input']!r} (allowed: "
                         f"{message.removeprefix('Input should be ')})")
    return UserError(str(blamed), key, message if own else f"{message}, got {err['input']!r}")


def _unknown_lines(unknown: dict[tuple[Path, tuple[Any, ...]], list[str]]) -> list[UserError]:
    """Several unknown keys in one mapping make one line."""
    out = []
    for (blamed, parent), names in unknown.items():
        shown = ", ".join(".".join(map(str, (*parent, n))) for n in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        known = _known_keys((*parent, names[0]))
        out.append(UserError(str(blamed), shown + more, f"unknown key{'s' if len(names) > 1 else ''} "
                             f"(allowed: {', '.join(known) or 'the keys documented in vars/schema.json'})"))
    return out


def _schema_errors(exc: Exception, files: dict[Path, dict[str, Any]]) -> list[UserError]:
    """One UserError per problem pydantic found, each blaming the file the value came from.

    ``files`` is {defaults file: its data, environment file: its data}, in merge order.
    """
    from pydantic import ValidationError  # only for the type; pydantic is loaded already

    assert isinstance(exc, ValidationError)
    (defaults_file, _), (env_file, env_data) = files.items()
    out = []
    unknown: dict[tuple[Path, tuple[Any, ...]], list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if loc and loc[-1] == "[key]":  # pydantic's marker for "the key itself is bad"
            loc = loc[:-1]
        key = ".".join(str(p) for p in loc)
        # Blame the file the value came from: the environment file if it sets the key, else defaults.
        blamed = env_file if (_has_path(env_data, loc) or not loc) else defaults_file
        if err["type"] == "missing":
            out.append(_missing(key, loc, files))
        elif err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
            if near:
                out.append(UserError(str(blamed), key, f"unknown key (did you mean {near[0]}? "
                                     f"allowed: {', '.join(_known_keys(loc))})"))
            else:
                unknown.setdefault((blamed, loc[:-1]), []).append(str(loc[-1]))
        else:
            out.append(_invalid(err, blamed, key))
    return out + _unknown_lines(unknown)


def load_environment(vars_dir: Path, env: str) -> Config:
    """Read defaults + one environment file, merge, validate; UserError on any problem."""
    from pydantic import ValidationError

    defaults_file = vars_dir / DEFAULTS
    env_file = vars_dir / f"{env}.yaml"
    if not env_file.exists() and not env_file.is_symlink():
        known = ", ".join(environments(vars_dir)) or "none"
        raise UserError(str(env_file), "", f"no such environment {env!r} (allowed: {known})")
    defaults = read_yaml(defaults_file)
    env_data = read_yaml(env_file)
    merged = merge(defaults, env_data)
    try:
        cfg = Config.model_validate(merged)
    except ValidationError as exc:
        raise UserErrors.of(_schema_errors(exc, {defaults_file: defaults, env_file: env_data})) from None
    except RecursionError:
        raise UserError(str(env_file), "", "is nested too deeply (allowed: a few levels)") from None
    if cfg.environment != env:
        raise UserError(str(env_file), "environment", f"is {cfg.environment!r} but the file is "
                        f"{env_file.name} (allowed: {env!r})")
    problems = [UserError(str(env_file if _has_path(env_data, tuple(key.split("."))) else defaults_file),
                          key, problem) for key, problem in cross_checks(cfg)]
    if problems:
        raise UserErrors.of(problems)
    return cfg


def load_all(vars_dir: Path, names: list[str] | None = None) -> list[Config]:
    """Every environment (or the named ones), validated, plus the rules across environments.

    The cross-environment rules (distinct, non-overlapping VPC CIDRs; distinct domains) always
    look at every environment in vars/, so rendering one environment cannot hide a clash.
    """
    every = environments(vars_dir)
    configs, problems = {}, []
    for env in every:  # every environment's problems, reported together
        try:
            configs[env] = load_environment(vars_dir, env)
        except UserErrors as exc:
            problems += exc.errors
        except UserError as exc:
            problems.append(exc)
    if problems:
        raise UserErrors.of(problems)
    seen_cidrs: list[tuple[str, ipaddress.IPv4Network]] = []
    seen_domains: dict[str, str] = {}
    for env, cfg in configs.items():
        net = ipaddress.IPv4Network(cfg.network.vpc_cidr)
        for other, other_net in seen_cidrs:
            if net.overlaps(other_net):
                raise UserError(os.path.join(str(vars_dir), f"{env}.yaml"), "network.vpc_cidr",
                                f"{net} overlaps {other}'s {other_net} (allowed: a range no "
                                "other environment uses)")
        seen_cidrs.append((env, net))
        for key, domain in (("frontend.domain", cfg.frontend.domain),
                            ("api.domain", cfg.api.domain)):
            if domain in seen_domains:
                raise UserError(os.path.join(str(vars_dir), f"{env}.yaml"), key,
                                f"{domain} is already used by {seen_domains[domain]} (allowed: "
                                "a name no other environment or stack uses)")
            seen_domains[domain] = f"{env} {key}"
    if names is None:
        return list(configs.values())
    for name in names:
        if name not in configs:
            raise UserError(os.path.join(str(vars_dir), f"{name}.yaml"), "",
                            f"no such environment {name!r} (allowed: {', '.join(every) or 'none'})")
    return [configs[name] for name in names]
