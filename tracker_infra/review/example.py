"""The example report in docs/reviewing.md: what `render.py diff` prints for a change that touches
most of the report's parts, produced by the package (`make regen` writes it; `--check` and
tests/test_review_table.py hold the page to it).

The change, made in a temporary git checkout of the repository's sources: a scaling bump, a new
IAM action, SSH opened to the internet and a tag added everywhere, reviewed for production in
markdown (what the pull request comment shows). tests/test_review_table.py reviews the same edits
one by one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..rendering import ROOT

Edit = tuple[str, str, str]  # file (from the repository root), text, its replacement

SCALING: Edit = ("vars/production.yaml", "max_acu: 16\n", "max_acu: 32\n")
NEW_IAM_ACTION: Edit = ("partials/api_roles.yaml.j2", "                  - logs:PutLogEvents\n",
                        "                  - logs:PutLogEvents\n                  - logs:DeleteLogGroup\n")
SSH_FROM_ANYWHERE: Edit = ("partials/network.yaml.j2", "        - Description: HTTPS from the internet\n",
                           "        - Description: SSH from anywhere\n          IpProtocol: tcp\n"
                           "          FromPort: 22\n          ToPort: 22\n          CidrIp: 0.0.0.0/0\n"
                           "        - Description: HTTPS from the internet\n")
TAG_EVERYWHERE: Edit = ("vars/defaults.yaml", "  Project: community-tracker\n",
                        "  Project: community-tracker\n  Team: platform\n")
EDITS = (SCALING, NEW_IAM_ACTION, SSH_FROM_ANYWHERE, TAG_EVERYWHERE)

PAGE = ROOT / "docs" / "reviewing.md"
MARKERS = ("<!-- example report: begin -->\n", "<!-- example report: end -->\n")
# What a checkout for `render.py diff` needs: the sources rendered/ is made from.
SOURCES = ("vars", "templates", "partials", "tracker_infra", "edge", "render.py")


def apply(edit: Edit, root: Path) -> None:
    path, old, new = edit
    file = root / path
    text = file.read_text()
    if old not in text:
        raise ValueError(f"{path}: the example's edit no longer applies ({old.strip()!r} is gone); "
                         "update tracker_infra/review/example.py")
    file.write_text(text.replace(old, new, 1))


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=regen", "-c", "user.email=regen@example.com", *args],  # noqa: S603, S607
                   cwd=root, check=True, capture_output=True)


def copy_sources(names: tuple[str, ...], target: Path) -> Path:
    """A copy of these files and folders of the repository (no __pycache__) in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def checkout(folder: Path) -> Path:
    """The sources, rendered and committed in a new git repository under ``folder``."""
    root = copy_sources(SOURCES, folder / "repo")
    subprocess.run([sys.executable, "render.py", "--all"], cwd=root, check=True, capture_output=True)  # noqa: S603
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "base")):
        _git(root, *args)
    return root


def report(root: Path, edits: tuple[Edit, ...] = EDITS) -> str:
    """`render.py diff --env production --format markdown` of the edits in a checkout made by
    checkout(); the commit's hash written as 0123abc so the page does not change with it."""
    for edit in edits:
        apply(edit, root)
    done = subprocess.run([sys.executable, "render.py", "diff", "--env", "production", "--format",  # noqa: S603
                           "markdown"], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0 or done.stderr:
        raise RuntimeError(f"render.py diff of the example failed ({done.returncode}): {done.stderr}")
    return re.sub(r"HEAD \([0-9a-f]+\)", "HEAD (0123abc)", done.stdout, count=1)


def page_with(example: str, page: str) -> str:
    """docs/reviewing.md's text with ``example`` between the markers."""
    start, end = page.index(MARKERS[0]) + len(MARKERS[0]), page.index(MARKERS[1])
    return page[:start] + "\n" + example.strip() + "\n\n" + page[end:]


def generated() -> dict[Path, bytes]:
    with tempfile.TemporaryDirectory(prefix="tracker-example-") as folder:
        example = report(checkout(Path(folder)))
    return {PAGE: page_with(example, PAGE.read_text()).encode("utf-8")}
