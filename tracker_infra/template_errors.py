"""A mistake in templates/ or partials/ reported like a compiler error: the file, the line, what is
wrong and the line itself (exit 2, nothing written). The templates are the maintainer's input, so
a Jinja syntax error, an undefined name or rendered YAML that does not parse is not a bug of the
tool.

  partials/network.yaml.j2:241: unexpected end of template ... | Description: {{ "x"
  rendered/dev/app.yaml:412:7: rendered YAML does not parse: ... (resource NatGateway1, from
  partials/network.yaml.j2) | <the rendered line>
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import TracebackType

import jinja2
import yaml

from .output import RenderError
from .rendering import PARTIALS, ROOT


class TemplateError(RenderError):
    """``file:line[:column]: problem | the offending line``, as one line."""

    def __init__(self, where: str, problem: str, line: str = "") -> None:
        self.file, self.key, self.problem = where, "", problem
        shown = f" | {line.strip()}" if line.strip() else ""
        Exception.__init__(self, f"{where}: {problem}{shown}")


def _relative(filename: str) -> str:
    path = Path(filename).resolve()
    return os.path.relpath(path, ROOT) if path.is_relative_to(ROOT) else str(path)


def _line_of(filename: str | None, number: int | None) -> str:
    if not filename or not number or not Path(filename).is_file():
        return ""
    lines = Path(filename).read_text(encoding="utf-8").splitlines()
    return lines[number - 1] if 0 < number <= len(lines) else ""


def _innermost_template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """(template file, line) of the deepest traceback frame that Jinja mapped to a template."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def from_jinja(exc: Exception) -> TemplateError | None:
    """The error a template raised while compiling or rendering, placed in its file; None when
    no template frame is known (then it is not the templates' mistake)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        filename = exc.filename or ""
        return TemplateError(f"{_relative(filename)}:{exc.lineno}", exc.message or str(exc),
                             _line_of(filename, exc.lineno))
    frame = _innermost_template_frame(exc.__traceback__)
    if frame is None:
        return None
    filename, number = frame
    problem = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
    return TemplateError(f"{_relative(filename)}:{number}", problem, _line_of(filename, number))


def _resource_at(lines: list[str], index: int) -> str | None:
    """The logical ID of the Resources entry around rendered line ``index`` (0-based), if any."""
    for line in reversed(lines[: index + 1]):
        match = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if match:
            return match[1]
        if re.match(r"^\S", line):  # a top-level key before any entry
            return None
    return None


def _partial_of(logical_id: str) -> str | None:
    """The partial that writes this logical ID as a key, when exactly one does."""
    key = re.compile(rf"^\s*{re.escape(logical_id)}:\s*$", re.M)
    found = [p for p in sorted(PARTIALS.glob("*.yaml.j2")) if key.search(p.read_text(encoding="utf-8"))]
    return os.path.relpath(found[0], ROOT) if len(found) == 1 else None


def from_yaml(exc: yaml.YAMLError, text: str, where: str) -> TemplateError:
    """Rendered YAML that does not parse: the rendered file's line and column, the resource it is
    in and the partial that renders that resource, when one does."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return TemplateError(where, f"rendered YAML does not parse: {problem}")
    lines = text.splitlines()
    resource = _resource_at(lines, mark.line)
    origin = ""
    if resource:
        partial = _partial_of(resource)
        origin = f" (resource {resource}" + (f", from {partial})" if partial else ")")
    line = lines[mark.line] if mark.line < len(lines) else ""
    return TemplateError(f"{where}:{mark.line + 1}:{mark.column + 1}",
                         f"rendered YAML does not parse: {problem}{origin}", line)
