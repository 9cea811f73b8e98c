"""What the tests of `render.py diff` on a real checkout share (tests/test_review_table.py,
tests/test_review_adversarial.py): running commands, the throwaway git repository made by
tracker_infra/review/example.checkout, the runtime install (requirements.txt only, as `make render`
builds it) and the report's head."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracker_infra.rendering import ROOT

RUNTIME = ROOT / ".venv-runtime"  # gitignored; rebuilt when requirements.txt changes


def run(*args: str | Path, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,  # noqa: S603
        timeout=timeout,
        check=False,
    )


def runtime_install() -> Path:
    """The python of a venv holding requirements.txt only (skips the test where none can be
    built)."""
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    marker = RUNTIME / "requirements.sha256"
    if not marker.is_file() or marker.read_text() != digest:
        shutil.rmtree(RUNTIME, ignore_errors=True)
        # as the Makefile does: a venv without pip, filled by the base interpreter's pip
        base = Path(sys.base_prefix) / "bin" / "python3"
        made = run(base, "-m", "venv", "--without-pip", RUNTIME)
        if made.returncode == 0:
            made = run(
                base,
                "-m",
                "pip",
                "--python",
                RUNTIME / "bin" / "python",
                "install",
                "--quiet",
                "-r",
                ROOT / "requirements.txt",
            )
        if made.returncode != 0:
            shutil.rmtree(RUNTIME, ignore_errors=True)
            pytest.skip(f"cannot build the runtime environment here: {made.stderr.strip()[-300:]}")
        marker.write_text(digest)
    python = RUNTIME / "bin" / "python"
    assert run(python, "-c", "import cfnlint").returncode != 0, "the runtime install has cfn-lint"
    return python


def git(repo: Path, *args: str) -> None:
    done = run("git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@example.com", *args)
    assert done.returncode == 0, done.stderr


def reset(repo: Path) -> None:
    """The checkout as committed: every edit and every file rendered since undone."""
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-qfd")


def alarms(text: str) -> str:
    """The report's head: its alarm lines (each starts with "!!")."""
    return "\n".join(line for line in text.splitlines() if line.startswith("!!"))
