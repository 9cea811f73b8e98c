"""Baselines: the two sides a review compares, each as env -> {file under rendered/<env>/: bytes}.

- ``fresh``: a render of the working tree's vars/, templates and partials, in memory;
- ``at_revision``: rendered/ as committed at a git revision (``HEAD`` by default: what the
  working tree's render is compared with, so a review shows the same change before and after
  ``render.py`` rewrites rendered/), read with git, never from disk;
- ``on_disk``: rendered/ as it is on disk (only outside a git checkout);
- ``normaliser``: an environment's own names replaced by placeholders, for ``diff A B``.

Each side also holds bootstrap/<account>.yaml (the deploy roles, their trust and policies) under
the key BOOTSTRAP, compared like a stack, for the accounts given: those whose every environment
the review covers (a bootstrap file renders every environment of its account).
"""

from __future__ import annotations

import re
import subprocess  # noqa: S404 - git, with fixed arguments and no shell
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

BOOTSTRAP = "bootstrap"  # the folder beside rendered/, and its key in Side.files


@dataclass
class Side:
    """One side of a comparison: env -> {file name within rendered/<env>/: bytes}."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commit: str = ""  # the abbreviated commit, when read from git
    parsed: dict[bytes, dict[str, Any]] = field(default_factory=dict)  # templates parsed already


def fresh(cfgs: list[Any], out_dir: Path, accounts: frozenset[str] = frozenset()) -> Side:
    """The render of ``cfgs``, and the bootstrap files of ``accounts``."""
    from ..bootstrap import bootstrap_files
    from ..output import render_files

    side = Side()
    every = []
    for cfg in cfgs:
        files, summaries = render_files(cfg, out_dir)
        every += summaries
        side.parsed.update((files[s.path], s.doc) for s in summaries)
        env_dir = out_dir / cfg.environment
        side.files[cfg.environment] = {p.relative_to(env_dir).as_posix(): b for p, b in files.items()
                                       if p.is_relative_to(env_dir)}
    chosen = [cfg for cfg in cfgs if cfg.account in accounts]
    if chosen:
        found = bootstrap_files(chosen, every, out_dir.parent / BOOTSTRAP)
        side.files[BOOTSTRAP] = {p.name: b for p, b in found.items()}
    return side


def bootstrap_on_disk(out_dir: Path, accounts: frozenset[str]) -> dict[str, bytes]:
    folder = out_dir.parent / BOOTSTRAP
    return {f"{a}.yaml": (folder / f"{a}.yaml").read_bytes() for a in sorted(accounts)
            if (folder / f"{a}.yaml").is_file()}


def on_disk(out_dir: Path, envs: list[str]) -> Side:
    side = Side()
    for env in envs:
        env_dir = out_dir / env
        if env_dir.is_dir():
            side.files[env] = {p.relative_to(env_dir).as_posix(): p.read_bytes()
                               for p in sorted(env_dir.rglob("*")) if p.is_file()
                               and not p.name.startswith(".")}
    return side


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False,  # noqa: S603, S607
                              timeout=60, input=stdin)
    except FileNotFoundError:
        raise UserError("--base", "", "git is not installed (allowed: run inside a git checkout "
                        "with git on PATH)") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError("--base", "", f"git {' '.join(args[:2])} failed: "
                        f"{message[-1] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


def in_git(out_dir: Path) -> bool:
    """Whether ``out_dir`` (or its parent, when it does not exist yet) is in a git work tree."""
    cwd = out_dir if out_dir.is_dir() else out_dir.parent
    try:
        return _git(cwd, "rev-parse", "--is-inside-work-tree").strip() == b"true"
    except UserError:
        return False


def at_revision(out_dir: Path, rev: str, envs: list[str] | None) -> Side:
    """rendered/<env>/ files as committed at ``rev`` (git show REV:./<path>, from out_dir)."""
    cwd = out_dir if out_dir.is_dir() else out_dir.parent
    prefix = "./" if cwd == out_dir else f"./{out_dir.name}/"
    if not rev or rev.startswith("-"):
        raise UserError("--base", "", f"{rev!r} is not a git revision (allowed: a branch, tag or commit)")
    try:
        commit = _git(cwd, "rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}")
    except UserError:
        raise UserError("--base", "", f"{rev!r} is not a commit in this repository (allowed: a "
                        "branch, tag or commit; in CI fetch the base branch with full history)") from None
    listing = _git(cwd, "ls-tree", "-r", "--name-only", rev, "--", prefix).decode("utf-8")
    side = Side(commit=commit.decode().strip())
    wanted = []
    for line in listing.splitlines():
        rel = line.removeprefix(f"{out_dir.name}/") if cwd != out_dir else line
        env, _, name = rel.partition("/")
        if name and (envs is None or env in envs):
            wanted.append((env, name, f"{rev}:{prefix}{rel}"))
    # every file in one git process: "<object> blob <size>\n<content>\n" each
    batch = _git(cwd, "cat-file", "--batch", stdin="".join(f"{o}\n" for _, _, o in wanted).encode())
    at = 0
    for env, name, obj in wanted:
        header_end = batch.index(b"\n", at)
        header = batch[at:header_end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise UserError("--base", "", f"git cat-file: {obj} is not a file at {rev}")
        size = int(header[2])
        side.files.setdefault(env, {})[name] = batch[header_end + 1:header_end + 1 + size]
        at = header_end + 1 + size + 1
    return side


def bootstrap_at(out_dir: Path, rev: str, accounts: frozenset[str]) -> dict[str, bytes]:
    """bootstrap/<account>.yaml of ``accounts`` as committed at ``rev`` (absent ones left out)."""
    cwd = out_dir.parent if out_dir.parent.is_dir() else Path(".")
    wanted = {f"{a}.yaml" for a in accounts}
    listing = _git(cwd, "ls-tree", "--name-only", rev, "--", f"./{BOOTSTRAP}/").decode("utf-8")
    names = [line.rsplit("/", 1)[-1] for line in listing.splitlines()]
    return {name: _git(cwd, "show", f"{rev}:./{BOOTSTRAP}/{name}") for name in names if name in wanted}


def normaliser(cfg: Any) -> Any:
    """A function that replaces an environment's own names in every string of a value."""
    from ..rendering import subnets

    tokens: list[tuple[str, str, str]] = [  # (text, placeholder, boundary kind)
        (cfg.frontend.certificate_arn, "<frontend-certificate>", "exact"),
        (cfg.api.certificate_arn, "<api-certificate>", "exact"),
        (cfg.api.domain, "<api-domain>", "domain"),
        (cfg.frontend.domain, "<domain>", "domain"),
        (cfg.edge_stack_name, "<stack>-edge", "word"),
        (cfg.stack_name, "<stack>", "word"),
        (cfg.account, "<account>", "digits"),
        (cfg.network.vpc_cidr, "<vpc-cidr>", "digits"),
        *[(s.cidr, f"<{s.logical_id}-cidr>", "digits") for s in subnets(cfg.network.vpc_cidr)],
        (cfg.environment, "<env>", "word"),
    ]
    bounds = {"exact": ("", ""), "domain": (r"(?<![A-Za-z0-9.@-])", r"(?![A-Za-z0-9-])"),
              "word": (r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"), "digits": (r"(?<![\d.])", r"(?![\d/])")}
    patterns = [(re.compile(bounds[kind][0] + re.escape(text) + bounds[kind][1]), placeholder)
                for text, placeholder, kind in sorted(tokens, key=lambda t: -len(t[0]))]

    def text(value: str) -> str:
        for pattern, placeholder in patterns:
            value = pattern.sub(placeholder, value)
        return value

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk
