"""From a validated Config to the files under rendered/<env>/: check, compare, write atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cfn_yaml import load_template
from .errors import UserError
from .rendering import (
    EDGE_SOURCE,
    PARTIALS,
    ROTATION_FILES,
    ROTATION_PACKAGE,
    Stack,
    edge_headers,
    render_stack,
    stacks,
)
from .schema import Config

# CloudFormation quotas (its "Quotas" documentation): per template, before the SAM transform
# expands it.
MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_TEMPLATE_BYTES = 1024 * 1024  # via S3, which sam deploy uses


class RenderError(UserError):
    """A template rendered to something that must not reach disk (a mistake in templates/ or
    partials/): one line naming the rendered file, exit 2, nothing written."""

    def __init__(self, message: str) -> None:
        self.file, self.key, self.problem = message.split(":", 1)[0], "", message
        Exception.__init__(self, message)


@dataclass(frozen=True)
class StackSummary:
    stack: Stack
    path: Path
    resources: int
    size: int
    doc: dict[str, Any]  # the parsed template, for whoever reads it next (graph, diff)


def check_template(text: str, where: str) -> dict[str, Any]:
    """Parse a rendered template back and hold it to CloudFormation's limits."""
    try:
        doc = load_template(text)
    except yaml.YAMLError as exc:
        from .template_errors import from_yaml

        raise from_yaml(exc, text, where) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise RenderError(f"{where}: rendered template has no Resources mapping")
    size = len(text.encode("utf-8"))
    for section, limit in (("Resources", MAX_RESOURCES), ("Parameters", MAX_PARAMETERS),
                           ("Outputs", MAX_OUTPUTS)):
        count = len(doc.get(section) or {})
        if count > limit:
            raise RenderError(f"{where}: {count} {section} (CloudFormation allows {limit})")
    if size > MAX_TEMPLATE_BYTES:
        raise RenderError(f"{where}: {size} bytes (CloudFormation allows {MAX_TEMPLATE_BYTES})")
    return doc


def render_files(cfg: Config, out_dir: Path) -> tuple[dict[Path, bytes], list[StackSummary]]:
    """Every file of one environment, in memory and checked: path -> bytes, plus summaries."""
    env_dir = out_dir / cfg.environment
    files: dict[Path, bytes] = {}
    summaries = []
    for stack in stacks(cfg):
        path = env_dir / stack.output
        text = render_stack(cfg, stack)
        doc = check_template(text, str(path))
        files[path] = text.encode("utf-8")
        summaries.append(StackSummary(stack, path, len(doc["Resources"]), len(files[path]), doc))
    # The edge function's package: the handler as written, its configuration rendered beside it.
    files[env_dir / "edge" / "handler.py"] = EDGE_SOURCE.read_bytes()
    headers = json.dumps({"headers": edge_headers(cfg)}, indent=2, sort_keys=True) + "\n"
    files[env_dir / "edge" / "headers.json"] = headers.encode("utf-8")
    # The database rotation function's package (the app template's Code path), as written.
    for name in ROTATION_FILES:
        files[env_dir / ROTATION_PACKAGE / name] = (PARTIALS / name).read_bytes()
    return files, summaries


def existing_files(env_dir: Path) -> set[Path]:
    return {p for p in env_dir.rglob("*") if p.is_file()} if env_dir.is_dir() else set()


def _leftovers(files: dict[Path, bytes], env_dirs: list[Path], leftovers: Sequence[Path]) -> list[Path]:
    """Files on disk that are no longer rendered: in the environment folders, or named."""
    found = {p for d in env_dirs for p in existing_files(d)} | {p for p in leftovers if p.is_file()}
    return sorted(found - set(files))


def stale_files(files: dict[Path, bytes], env_dirs: list[Path], leftovers: Sequence[Path] = ()) -> list[str]:
    """What differs on disk from ``files``: changed, missing, or no longer rendered."""
    stale = []
    for path, content in sorted(files.items()):
        if not path.is_file():
            stale.append(f"{path} (missing)")
        elif path.read_bytes() != content:
            stale.append(f"{path} (differs)")
    stale += [f"{path} (no longer rendered)" for path in _leftovers(files, env_dirs, leftovers)]
    return stale


def write_files(files: dict[Path, bytes], env_dirs: list[Path], leftovers: Sequence[Path] = ()) -> None:
    """Write everything or nothing: all temporary files first, then one rename each.

    Files that are no longer rendered (in the environment folders, or named in ``leftovers``)
    are removed, and so are the folders that leaves empty.
    """
    pending: list[tuple[Path, Path]] = []
    try:
        for path, content in sorted(files.items()):
            if path.is_file() and path.read_bytes() == content:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            pending.append((Path(tmp), path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
    except OSError as exc:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        folder = exc.filename or str(next(iter(files)).parent)
        raise UserError(str(folder), "", f"cannot write: {exc.strerror} (allowed: a writable "
                        "output folder; nothing was changed)") from None
    for tmp, path in pending:
        os.replace(tmp, path)
    for path in _leftovers(files, env_dirs, leftovers):
        path.unlink()
        folder = path.parent
        while (folder.is_dir() and not any(folder.iterdir())
               and any(folder.is_relative_to(d) for d in env_dirs)):
            folder.rmdir()
            folder = folder.parent
