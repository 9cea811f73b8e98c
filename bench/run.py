#!/usr/bin/env python3
"""Benchmarks: print tables, assert nothing about time.

    python bench/run.py            # render, edge, checks, review, install, ops (a minute or two)
    python bench/run.py suite      # the test tiers: make check and make test (several minutes)
    python bench/run.py render     # one section: render | edge | checks | review | install | ops | suite

Goals (README "Performance"): `render.py --all` under 0.5 s as a cold process on a 2-core machine;
render time per environment flat from 1 to 50 environments; the edge handler within 5x of a no-op
handler on the same event; the edge package a few kilobytes.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
BIN = Path(PY).parent
EVENT = ROOT / "tests" / "fixtures" / "cloudfront" / "origin-response.json"


def cpu_timings(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system of the child processes) seconds of each run. On a shared
    machine the CPU time moves much less than the wall time: it does not count waiting for a core."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    return cpu_timings(fn, runs)[0]


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(timings(fn, runs))


def median_min(secs: list[float]) -> str:
    """Shared machines are noisy: the median says what to expect, the minimum what the code costs
    when nothing else runs."""
    return f"{statistics.median(secs) * 1000:.0f} / {min(secs) * 1000:.0f} ms"


# A first run compiles Python's bytecode (written even where PYTHONDONTWRITEBYTECODE is set, as on
# any machine without it) and Jinja's template cache; every later run is cold, not compiling.
COMPILING = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, **kw)  # type: ignore[call-overload]


def table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print("-" * (width + 18))
    for name, value in rows:
        print(f"{name:<{width}}  {value:>14}")


def generated_vars(count: int, target: Path) -> Path:
    """A vars folder with ``count`` environments: copies of staging with their own names, CIDRs and
    accounts (an account's bootstrap template holds a few dozen environments' roles at most)."""
    import yaml

    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "vars" / "defaults.yaml", target / "defaults.yaml")
    base = yaml.safe_load((ROOT / "vars" / "staging.yaml").read_text())
    for i in range(count):
        name = f"env{i}"
        data = copy.deepcopy(base)
        data["environment"] = name
        data["tags"]["Environment"] = name
        data["network"]["vpc_cidr"] = f"10.{i}.0.0/16"
        account = str(200000000000 + i)
        for section in ("api", "frontend"):
            arn = data[section]["certificate_arn"]
            data[section]["certificate_arn"] = arn.replace(data["account"], account)
        data["account"] = account
        data["api"]["domain"] = f"api.{name}.communitytracker.example.com"
        data["frontend"]["domain"] = f"{name}.communitytracker.example.com"
        (target / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def bench_render() -> None:
    from tracker_infra.cli import main

    tmp = Path(tempfile.mkdtemp())
    try:
        out = tmp / "out"
        rows = []
        run([PY, "render.py", "--all", "--out", str(out)], env=COMPILING)
        for label, args in (("--env staging", ["--env", "staging"]), ("--all", ["--all"]),
                            ("--all --check", ["--all", "--check", "--out", str(ROOT / "rendered")])):
            full = args if "--out" in args else [*args, "--out", str(out)]
            secs, cpu = cpu_timings(lambda a=full: run([PY, "render.py", *a]), 21)
            rows.append((f"cold process: render.py {label}, wall median / min; CPU median (of 21)",
                         f"{median_min(secs)}; {statistics.median(cpu) * 1000:.0f} ms"))
        startup = timings(lambda: run([PY, "-c", "pass"]), 21)
        rows.append(("cold process: python -c pass (interpreter floor)", median_min(startup)))
        quiet = io.StringIO()
        sys.stdout, saved = quiet, sys.stdout
        try:
            main(["--all", "--out", str(out)])  # warm: one Jinja environment, templates compiled
            warm = median_seconds(lambda: main(["--all", "--out", str(out)]), 15)
        finally:
            sys.stdout = saved
        rows.append(("in process: --all, warm (median of 15)", f"{warm * 1000:.1f} ms"))
        table("Rendering", rows)

        rows = []
        for count in (1, 10, 50):
            vars_dir = generated_vars(count, tmp / f"vars{count}")
            secs = median_seconds(lambda v=vars_dir, c=count: run(
                [PY, "render.py", "--all", "--vars", str(v), "--out", str(tmp / f"o{c}")]), 5)
            sys.stdout = quiet
            try:
                warm = median_seconds(lambda v=vars_dir, c=count: main(
                    ["--all", "--vars", str(v), "--out", str(tmp / f"o{c}")]), 5)
            finally:
                sys.stdout = saved
            rows.append((f"{count:>2} environments: cold total / warm per env",
                         f"{secs * 1000:.0f} / {warm / count * 1000:.1f} ms"))
        table("Scaling with the number of environments (time per environment should stay flat)", rows)
    finally:
        shutil.rmtree(tmp)


def bench_edge() -> None:
    package = ROOT / "rendered" / "staging" / "edge"
    event = json.loads(EVENT.read_text())
    import_secs = median_seconds(lambda: run([PY, "-c", "import handler"], env={
        **os.environ, "PYTHONPATH": str(package)}), 9)
    floor_secs = median_seconds(lambda: run([PY, "-c", "pass"]), 9)

    spec = importlib.util.spec_from_file_location("edge_handler_bench", package / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.handler(copy.deepcopy(event), None)  # cold start: reads headers.json once

    def noop(ev: dict, _ctx: object) -> dict:
        return ev["Records"][0]["cf"]["response"]

    # (a) the handler alone, on one event reused (the handler is idempotent), hot in cache;
    # (b) one invocation as Lambda runs it: decode the event's JSON, call, encode the response.
    def hot(fn: Callable[[dict, object], object], runs: int = 100_000) -> float:
        ev = copy.deepcopy(event)
        start = time.perf_counter()
        for _ in range(runs):
            fn(ev, None)
        return (time.perf_counter() - start) / runs * 1e6

    raw = json.dumps(event)

    def invocation(fn: Callable[[dict, object], object], runs: int = 20_000) -> float:
        start = time.perf_counter()
        for _ in range(runs):
            json.dumps(fn(json.loads(raw), None))
        return (time.perf_counter() - start) / runs * 1e6

    handler_us = statistics.median(hot(module.handler) for _ in range(5))
    noop_us = statistics.median(hot(noop) for _ in range(5))
    handler_inv = statistics.median(invocation(module.handler) for _ in range(5))
    noop_inv = statistics.median(invocation(noop) for _ in range(5))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.iterdir()):
            zf.write(path, path.name)
    table("Edge function (rendered/staging/edge)", [
        ("import (cold process, minus interpreter start)",
         f"{(import_secs - floor_secs) * 1000:.1f} ms"),
        ("handler alone, per event (median)", f"{handler_us:.2f} us"),
        ("no-op alone, same event (floor)", f"{noop_us:.2f} us"),
        ("handler / floor, alone", f"{handler_us / noop_us:.1f} x"),
        ("per invocation with event/response JSON: handler", f"{handler_inv:.2f} us"),
        ("per invocation with event/response JSON: no-op", f"{noop_inv:.2f} us"),
        ("handler / floor, per invocation", f"{handler_inv / noop_inv:.1f} x"),
        ("zipped package (handler.py + headers.json)", f"{len(buffer.getvalue()) / 1024:.1f} KB"),
    ])


def bench_checks() -> None:
    templates = sorted((ROOT / "rendered").glob("*/*.yaml"))
    rows = []
    for path in templates:
        rel = str(path.relative_to(ROOT))
        start = time.perf_counter()
        run([str(BIN / "cfn-lint"), rel])
        lint = time.perf_counter() - start
        start = time.perf_counter()
        run([str(BIN / "checkov"), "--quiet", "--compact", "--skip-download", "--framework",
             "cloudformation", "-f", rel])
        checkov = time.perf_counter() - start
        rows.append((rel, f"{lint:.1f} s / {checkov:.1f} s"))
    table("Checks per template: cfn-lint / checkov (cold process each)", rows)


def bench_review() -> None:
    """render.py diff as a reviewer runs it: a cold process in a git repository (baseline HEAD)."""
    from tests.helpers import copy_sources

    tmp = Path(tempfile.mkdtemp())
    try:
        copy_sources(("render.py", "tracker_infra", "templates", "partials", "vars", "edge", "rendered",
                      "docs", "bootstrap", "samconfig.toml"), tmp)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
            subprocess.run([*git, *args], cwd=tmp, check=True, capture_output=True)
        vars_file = tmp / "vars" / "staging.yaml"
        vars_file.write_text(vars_file.read_text().replace("max_tasks: 6", "max_tasks: 8"))
        rows = []
        subprocess.run([PY, "render.py", "diff"], cwd=tmp, capture_output=True, check=False,  # noqa: S603
                       env=COMPILING)
        for label, args in (("diff --env staging (one environment changed)", ["--env", "staging"]),
                            ("diff (every environment)", []),
                            ("diff staging production", ["staging", "production"])):
            secs = timings(lambda a=args: subprocess.run(  # noqa: S603
                [PY, "render.py", "diff", *a], cwd=tmp, capture_output=True, check=False), 11)
            rows.append((f"cold process: render.py {label} (median / min of 11)", median_min(secs)))
        table("Review (goal: diff of one environment under 1 s)", rows)
    finally:
        shutil.rmtree(tmp)


def bench_install() -> None:
    """The runtime install: requirements.txt in a venv without pip, as `make render` builds it."""
    tmp = Path(tempfile.mkdtemp())
    try:
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        started = time.perf_counter()
        done = run(["python3", "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "--quiet", "-r", str(ROOT / "requirements.txt")])
        secs = time.perf_counter() - started
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
        table("Runtime install (goal: under 30 MB)", [
            ("pip install -r requirements.txt", f"{secs:.1f} s" if done.returncode == 0 else "failed"),
            ("the venv on disk", f"{size / 1e6:.1f} MB")])
    finally:
        shutil.rmtree(tmp)


def bench_ops() -> None:
    """plan and verify against the local stand-ins (moto, local HTTPS servers), with the time each
    spends waiting for AWS and the SAM CLI apart from its own (TRACKER_TIMINGS, ops/timing.py)."""
    timings = Path(tempfile.mkdtemp()) / "timings.txt"
    tests = ["tests/test_ops_moto.py::test_plan_on_the_rendered_templates_packages_and_creates_"
             "both_change_sets", "tests/test_verify.py::test_verify_passes_on_a_healthy_environment"]
    run([PY, "-m", "pytest", "-q", "-p", "no:xdist", *tests],
        env={**os.environ, "TRACKER_TIMINGS": str(timings)})
    lines = timings.read_text().splitlines() if timings.exists() else ["(no timings: the tests failed)"]
    table("Operational commands against the stand-ins", [tuple(line.split(": ", 1)) if ": " in line
                                                          else (line, "") for line in lines])
    shutil.rmtree(timings.parent)


def bench_suite() -> None:
    rows = []
    for label, args in (("make check (the fast loop)", ["make", "--no-print-directory", "check"]),
                        ("make test (the whole suite and lint)", ["make", "--no-print-directory", "test"])):
        start = time.perf_counter()
        result = run(args)
        rows.append((label, f"{time.perf_counter() - start:.0f} s" +
                     ("" if result.returncode == 0 else " (failed)")))
    table("Test tiers, 2 workers (goals: check under 60 s, test under 3 min)", rows)


SECTIONS = {"render": bench_render, "edge": bench_edge, "checks": bench_checks, "review": bench_review,
            "install": bench_install, "ops": bench_ops, "suite": bench_suite}

if __name__ == "__main__":
    chosen = sys.argv[1:] or ["render", "edge", "checks", "review", "install", "ops"]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        sys.exit(f"bench/run.py: {' '.join(unknown)}: no such section (allowed: {', '.join(SECTIONS)}; "
                 "none for the default set)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for name in chosen:
        SECTIONS[name]()
