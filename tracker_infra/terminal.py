"""What the commands print, fitted to where it goes: colour and the terminal's width on a
terminal only. Piped or redirected output (CI logs, `| less`, files) is plain and whole; so is
every --format markdown or --json output, which is where the full text of a clipped cell is.

Colour follows the NO_COLOR convention (https://no-color.org/): set and not empty, no colour.
TERM=dumb turns it off too.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from typing import TextIO

RESET = "\033[0m"
STYLES = {"red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m", "bold-red": "\033[1;31m"}
# Words and marks that carry a verdict, and their colour.
PAINTED = (
    (re.compile(r"\bFAIL\b|\bfailed\b(?= \d| checks?)"), "red"),
    (re.compile(r"\bPASS\b"), "green"),
    (re.compile(r"\bSKIP\b|\bWAIT\b"), "yellow"),
    (re.compile(r"WIDENS(?::[^\n]*)?|^!!.*$|Replacement: (?:True|Conditional)", re.M), "bold-red"),
    (re.compile(r"\b(?:CREATE|UPDATE|DELETE|IMPORT)_COMPLETE\b"), "green"),
    (re.compile(r"\b[A-Z_]*(?:FAILED|ROLLBACK[A-Z_]*)\b"), "red"),
)
ELLIPSIS = "…"
MIN_COLUMN = 8  # a clipped column keeps at least this many characters


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def colour_on(stream: TextIO | None = None) -> bool:
    return is_terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, stream: TextIO | None = None) -> str:
    """The text with its verdict words coloured, when ``stream`` (stdout) is a colour terminal."""
    if not colour_on(stream):
        return text
    for pattern, style in PAINTED:
        text = pattern.sub(lambda m, s=style: f"{STYLES[s]}{m.group()}{RESET}", text)
    return text


def width(stream: TextIO | None = None) -> int | None:
    """The terminal's width in columns, or None when the output is not a terminal (no limit)."""
    return shutil.get_terminal_size().columns if is_terminal(stream) else None


def clip(text: str, columns: int) -> str:
    return text if len(text) <= columns else text[: max(columns - 1, 0)] + ELLIPSIS


def fit(widths: list[int], limit: int | None, indent: int = 2, gap: int = 2) -> list[int]:
    """Column widths that make a table line fit ``limit`` columns: the widest column gives up
    characters first, none below MIN_COLUMN (a table that still does not fit stays wider)."""
    if limit is None:
        return widths
    fitted = list(widths)
    while indent + sum(fitted) + gap * (len(fitted) - 1) > limit:
        widest = max(range(len(fitted)), key=lambda i: fitted[i])
        if fitted[widest] <= MIN_COLUMN:
            break
        fitted[widest] -= 1
    return fitted
