"""docs/extending.md, the checklist for adding a resource or a layer, cannot rot: every file,
folder, test module and named definition it mentions exists, and every step names a check."""

from __future__ import annotations

import re

from tracker_infra.rendering import ROOT

PAGE = ROOT / "docs" / "extending.md"
PATH = re.compile(r"`((?:[\w.-]+/)+[\w.<>-]*|[\w-]+\.(?:py|md|j2|yaml|toml))`")


def test_every_file_the_checklist_names_exists() -> None:
    text = PAGE.read_text()
    named = set(PATH.findall(text))
    assert len(named) > 20, named
    missing = sorted(n for n in named if "<" not in n and not (ROOT / n).exists())
    assert missing == [], missing


def test_every_definition_it_names_exists_where_it_says() -> None:
    text = PAGE.read_text()
    sources = {
        "NO_CHARGE_OF_ITS_OWN": "tracker_infra/review/cost.py",
        "BY_USAGE_NOT_COUNTED": "tracker_infra/review/cost.py",
        "TYPE_LAYERS": "tracker_infra/review/layers.py",
        "ApiTaskRole": "partials/api_roles.yaml.j2",
        "m.data_policies": "partials/macros.yaml.j2",
        "m.with_create_id": "partials/macros.yaml.j2",
        "m.tags": "partials/macros.yaml.j2",
        "@priced": "tracker_infra/review/cost.py",
    }
    for name, where in sources.items():
        assert name in text, name
        assert name.removeprefix("m.").removeprefix("@") in (ROOT / where).read_text(), (name, where)


def test_every_step_names_a_check_and_the_regeneration_command() -> None:
    steps = re.split(r"\n\d+\. ", PAGE.read_text())[1:]
    assert len(steps) >= 12
    for step in steps[:-1]:  # the last one is the docs
        assert re.search(r"Check[s]?: `(tests/test_\w+\.py|make regen-check)`", step), step[:80]
    assert "`make regen`" in PAGE.read_text()
