"""Fail when a function of the project's code is more complex than LIMIT (radon's cyclomatic
complexity), listing each one: `make lint` runs it (and `make check`, through lint-quick).

  .venv/bin/python tools/complexity.py [PATH ...]     default: tracker_infra render.py bench tools tests
"""

from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit

LIMIT = 15
DEFAULT = ("tracker_infra", "render.py", "bench", "tools", "tests")


def too_complex(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            for block in cc_visit(file.read_text(encoding="utf-8")):
                if block.complexity > LIMIT:
                    found.append(f"{file}:{block.lineno}: {block.fullname} has complexity {block.complexity} "
                                 f"(allowed: {LIMIT} at most; split it into named steps)")
    return found


def main(argv: list[str]) -> int:
    found = too_complex([Path(p) for p in (argv or DEFAULT)])
    print("\n".join(found) if found else f"complexity: every function at {LIMIT} or less")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
