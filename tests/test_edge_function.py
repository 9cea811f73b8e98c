"""The Lambda@Edge security-headers function (edge/handler.py).

Every test loads the handler from a copy beside a headers.json, the way the renderer
lays it out in rendered/<env>/edge/, so the real file-reading path runs. Fixtures are
AWS's documented origin-response event and two variants (see
tests/fixtures/cloudfront/SOURCES.md).
"""

from __future__ import annotations

import ast
import builtins
import copy
import importlib.util
import itertools
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker_infra.header_grading import header_problems

ROOT = Path(__file__).resolve().parent.parent
HANDLER_SOURCE = ROOT / "edge" / "handler.py"
FIXTURES = ROOT / "tests" / "fixtures" / "cloudfront"
EVENT_FILES = sorted(FIXTURES.glob("origin-response*.json"))

# What the renderer writes for an environment like staging (contract: name -> value);
# tests/test_csp_browser.py loads a Vite build under the same file.
SAMPLE_FILE = FIXTURES / "headers-sample.json"
STAGING_HEADERS: dict[str, str] = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))["headers"]
CONTRACT_NAMES = set(STAGING_HEADERS) - {"Content-Security-Policy"}
CSP_NAMES = {"Content-Security-Policy", "Content-Security-Policy-Report-Only"}

_counter = itertools.count()


def load_handler(directory: Path, source: Path = HANDLER_SOURCE) -> ModuleType:
    """Import handler.py from `directory` as a fresh module: a cold start."""
    target = directory / "handler.py"
    if source != target:
        shutil.copyfile(source, target)
    name = f"edge_handler_under_test_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # never leave __pycache__ in rendered/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def install(directory: Path, headers: dict[str, str]) -> ModuleType:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "headers.json").write_text(json.dumps({"headers": headers}), encoding="utf-8")
    return load_handler(directory)


@pytest.fixture
def edge(tmp_path: Path) -> ModuleType:
    return install(tmp_path / "edge", STAGING_HEADERS)


def load_event(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def response_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["Records"][0]["cf"]["response"]


def assert_security_headers(headers: dict[str, Any], expected: dict[str, str]) -> None:
    """Each configured header: one lower-case key in CloudFront's map holding one entry named as
    configured, graded by the rule verify grades the deployed site by (header_problems)."""
    for name in expected:
        matching = [k for k in headers if isinstance(k, str) and k.lower() == name.lower()]
        assert matching == [name.lower()], f"{name}: keys {matching}"
        assert [entry["key"] for entry in headers[name.lower()]] == [name]
    served = [(entry["key"], entry["value"]) for name in expected for entry in headers[name.lower()]]
    assert header_problems(served, expected) == []


# --- the documented events ------------------------------------------------------------


def test_fixtures_are_origin_response_events() -> None:
    assert [p.name for p in EVENT_FILES] == [
        "origin-response-404.json",
        "origin-response-503.json",
        "origin-response.json",
    ]
    for path in EVENT_FILES:
        cf = load_event(path)["Records"][0]["cf"]
        assert cf["config"]["eventType"] == "origin-response"
        assert set(cf) == {"config", "request", "response"}


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=lambda p: p.stem)
def test_sets_every_configured_header_on_documented_event(edge: ModuleType, event_file: Path) -> None:
    event = load_event(event_file)
    before = copy.deepcopy(response_of(event))

    result = edge.handler(event, None)

    assert result is response_of(event)  # modified in place and returned
    assert_security_headers(result["headers"], STAGING_HEADERS)
    assert result["status"] == before["status"]
    assert result["statusDescription"] == before["statusDescription"]


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=lambda p: p.stem)
def test_keeps_every_other_origin_header(edge: ModuleType, event_file: Path) -> None:
    event = load_event(event_file)
    configured = {n.lower() for n in STAGING_HEADERS}
    foreign = {k: v for k, v in copy.deepcopy(response_of(event)["headers"]).items() if k not in configured}
    assert {
        "server",
        "date",
        "content-type",
        "content-length",
        "x-xss-protection",
    } <= set(foreign)

    headers = edge.handler(event, None)["headers"]

    assert {k: v for k, v in headers.items() if k not in configured} == foreign


def test_overrides_the_origins_weaker_value(edge: ModuleType) -> None:
    event = load_event(FIXTURES / "origin-response.json")
    assert response_of(event)["headers"]["referrer-policy"][0]["value"] == ("no-referrer-when-downgrade")
    headers = edge.handler(event, None)["headers"]
    assert headers["referrer-policy"] == [
        {"key": "Referrer-Policy", "value": "strict-origin-when-cross-origin"}
    ]


def test_replaces_existing_entries_whatever_their_casing(edge: ModuleType) -> None:
    event = load_event(FIXTURES / "origin-response.json")
    headers = response_of(event)["headers"]
    headers["Content-Security-Policy"] = [{"key": "Content-Security-Policy", "value": "*"}]
    headers["STRICT-TRANSPORT-SECURITY"] = [{"key": "x", "value": "max-age=0"}]
    headers["x-frame-options"] = [
        {"key": "X-Frame-Options", "value": "ALLOWALL"},
        {"key": "X-Frame-Options", "value": "SAMEORIGIN"},
    ]

    result = edge.handler(event, None)["headers"]

    assert "Content-Security-Policy" not in result
    assert "STRICT-TRANSPORT-SECURITY" not in result
    assert_security_headers(result, STAGING_HEADERS)


def test_dev_report_only_policy_is_taken_from_the_file(tmp_path: Path) -> None:
    dev = {k: v for k, v in STAGING_HEADERS.items() if k != "Content-Security-Policy"}
    dev["Content-Security-Policy-Report-Only"] = "default-src 'self'"
    edge = install(tmp_path / "edge", dev)
    event = load_event(FIXTURES / "origin-response.json")

    headers = edge.handler(event, None)["headers"]

    assert_security_headers(headers, dev)
    assert "content-security-policy" not in headers


def test_values_come_from_the_file_not_the_code(tmp_path: Path) -> None:
    odd = {name: f"value-{i}-from-file" for i, name in enumerate(STAGING_HEADERS)}
    edge = install(tmp_path / "edge", odd)
    headers = edge.handler(load_event(FIXTURES / "origin-response.json"), None)["headers"]
    assert_security_headers(headers, odd)
    source = HANDLER_SOURCE.read_text(encoding="utf-8")
    for value in STAGING_HEADERS.values():
        assert value not in source
    for fragment in ("max-age", "default-src", "nosniff", "same-origin"):
        assert fragment not in source


def test_returned_entries_are_not_the_cached_config(edge: ModuleType) -> None:
    first = edge.handler(load_event(FIXTURES / "origin-response.json"), None)
    first["headers"]["x-frame-options"][0]["value"] = "tampered"
    second = edge.handler(load_event(FIXTURES / "origin-response.json"), None)
    assert second["headers"]["x-frame-options"] == [{"key": "X-Frame-Options", "value": "DENY"}]


# --- odd events -----------------------------------------------------------------------


def _with_response(response: object) -> dict[str, Any]:
    return {"Records": [{"cf": {"config": {"eventType": "origin-response"}, "response": response}}]}


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        [],
        "origin-response",
        42,
        {"Records": None},
        {"Records": []},
        {"Records": {}},
        {"Records": [None]},
        {"Records": [{}]},
        {"Records": [{"cf": None}]},
        {"Records": [{"cf": {}}]},
        _with_response(None),
        _with_response([]),
        _with_response("200"),
    ],
    ids=repr,
)
def test_event_without_response_gets_headers_only_response(edge: ModuleType, event: Any) -> None:
    result = edge.handler(event, None)
    assert set(result) == {"headers"}
    assert_security_headers(result["headers"], STAGING_HEADERS)
    assert len(result["headers"]) == len(STAGING_HEADERS)


@pytest.mark.parametrize("headers", ["missing", None, [], "x", 7, [["server", "x"]]], ids=repr)
def test_missing_or_non_dict_headers_map_is_created(edge: ModuleType, headers: object) -> None:
    response: dict[str, Any] = {"status": "200", "statusDescription": "OK"}
    if headers != "missing":
        response["headers"] = headers
    event = _with_response(response)

    result = edge.handler(event, None)

    assert result is response
    assert isinstance(result["headers"], dict)
    assert_security_headers(result["headers"], STAGING_HEADERS)
    assert result["status"] == "200"


def test_works_on_a_viewer_request_shaped_record_without_raising(
    edge: ModuleType,
) -> None:
    event = {"Records": [{"cf": {"request": {"uri": "/", "headers": {}}}}]}
    assert_security_headers(edge.handler(event, None)["headers"], STAGING_HEADERS)


# --- properties -----------------------------------------------------------------------

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~"
CONFIGURED_LOWER = {n.lower() for n in STAGING_HEADERS}

odd_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
entry = st.fixed_dictionaries({"key": st.text(max_size=30), "value": st.text(max_size=60)})
header_value = st.lists(entry, max_size=4) | odd_value
foreign_name = st.text(TOKEN_CHARS, min_size=1, max_size=30).filter(
    lambda n: n.lower() not in CONFIGURED_LOWER
) | st.text(max_size=30).filter(lambda n: n.lower() not in CONFIGURED_LOWER)


@st.composite
def configured_name_any_casing(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(STAGING_HEADERS)))
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(name, flips, strict=True))


status = st.integers(100, 599).map(str) | st.integers() | st.none() | st.text(max_size=5)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    foreign=st.dictionaries(foreign_name, header_value, max_size=12),
    existing=st.dictionaries(configured_name_any_casing(), header_value, max_size=8),
    status=status,
)
def test_property_any_header_map_any_status(
    edge: ModuleType, foreign: dict[str, Any], existing: dict[str, Any], status: object
) -> None:
    response = {"status": status, "headers": {**existing, **foreign}}
    expected_foreign = copy.deepcopy(foreign)
    event = _with_response(response)

    result = edge.handler(event, None)

    assert result is response
    assert result["status"] == status
    headers = result["headers"]
    assert_security_headers(headers, STAGING_HEADERS)
    assert {k: v for k, v in headers.items() if k.lower() not in CONFIGURED_LOWER} == (expected_foreign)
    assert len(headers) == len(foreign) + len(STAGING_HEADERS)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["Records", "cf", "response", "headers", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=json_like)
def test_property_any_event_shape_never_raises(edge: ModuleType, event: object) -> None:
    result = edge.handler(event, None)
    assert isinstance(result, dict)
    assert_security_headers(result["headers"], STAGING_HEADERS)


# --- configuration: loaded once per cold start, validated -----------------------------


def test_config_is_read_once_per_cold_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "edge"
    config_file = directory / "headers.json"
    opened: list[str] = []
    real_open: Callable[..., Any] = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(file)) == config_file:
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    edge = install(directory, STAGING_HEADERS)
    for _ in range(25):
        edge.handler(load_event(FIXTURES / "origin-response.json"), None)
    assert len(opened) == 1

    # The file changes under a warm container: the old values stay in force ...
    changed = {**STAGING_HEADERS, "X-Frame-Options": "SAMEORIGIN"}
    config_file.write_text(json.dumps({"headers": changed}), encoding="utf-8")
    warm = edge.handler(load_event(FIXTURES / "origin-response.json"), None)["headers"]
    assert warm["x-frame-options"][0]["value"] == "DENY"
    assert len(opened) == 1

    # ... and the next cold start reads the new file.
    cold = load_handler(directory).handler(load_event(FIXTURES / "origin-response.json"), None)
    assert cold["headers"]["x-frame-options"][0]["value"] == "SAMEORIGIN"
    assert len(opened) == 2


def test_config_is_read_beside_the_handler(tmp_path: Path) -> None:
    edge = install(tmp_path / "somewhere" / "edge", STAGING_HEADERS)
    assert Path(edge.CONFIG_PATH) == tmp_path / "somewhere" / "edge" / "headers.json"


@pytest.mark.parametrize(
    "name",
    [
        "Via",
        "Transfer-Encoding",
        "X-Amz-Cf-Id",
        "x-amz-cf-pop",
        "X-Edge-Location",
        "Connection",
        "Keep-Alive",
        "Upgrade",
        "X-Cache",
        "X-Forwarded-Proto",
    ],
)
def test_config_naming_a_forbidden_header_is_rejected(tmp_path: Path, name: str) -> None:
    edge = install(tmp_path / "edge", {**STAGING_HEADERS, name: "1"})
    with pytest.raises(edge.ConfigError, match="CloudFront forbids"):
        edge.handler(load_event(FIXTURES / "origin-response.json"), None)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"headers": []}',
        '{"headers": {}}',
        '{"Strict-Transport-Security": "max-age=1"}',
        '{"headers": {"X-Frame-Options": 1}}',
        '{"headers": {"X-Frame-Options": ""}}',
        '{"headers": {"X-Frame-Options": "DENY\\r\\nSet-Cookie: a=b"}}',
        '{"headers": {"Bad Name": "x"}}',
        '{"headers": {"X-Frame-Options": "DENY", "x-frame-options": "DENY"}}',
    ],
)
def test_malformed_config_raises_config_error(tmp_path: Path, content: str) -> None:
    directory = tmp_path / "edge"
    directory.mkdir()
    (directory / "headers.json").write_text(content, encoding="utf-8")
    edge = load_handler(directory)
    with pytest.raises(edge.ConfigError):
        edge.handler({}, None)


def test_missing_config_raises_config_error(tmp_path: Path) -> None:
    (tmp_path / "edge").mkdir()
    edge = load_handler(tmp_path / "edge")
    with pytest.raises(edge.ConfigError, match="cannot read"):
        edge.handler({}, None)


# --- the code itself ------------------------------------------------------------------


def test_handler_imports_only_the_standard_library() -> None:
    tree = ast.parse(HANDLER_SOURCE.read_text(encoding="utf-8"), feature_version=(3, 12))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported, "expected some imports"
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
    assert "{{" not in HANDLER_SOURCE.read_text(encoding="utf-8")  # no template syntax


# --- the rendered environments --------------------------------------------------------


def _rendered_edge_dirs() -> Iterator[Any]:
    found = sorted(ROOT.glob("rendered/*/edge/headers.json"))
    if not found:
        yield pytest.param(
            None,
            marks=pytest.mark.skip(reason="no rendered/*/edge/headers.json yet (run render.py)"),
        )
    for path in found:
        yield pytest.param(path.parent, id=path.parent.parent.name)


@pytest.mark.parametrize("edge_dir", list(_rendered_edge_dirs()))
def test_rendered_environment(edge_dir: Path) -> None:
    handler_file = edge_dir / "handler.py"
    assert handler_file.read_bytes() == HANDLER_SOURCE.read_bytes(), "stale copy of edge/handler.py"
    data = json.loads((edge_dir / "headers.json").read_text(encoding="utf-8"))
    assert set(data) == {"headers"}
    configured: dict[str, str] = data["headers"]
    assert all(isinstance(v, str) and v for v in configured.values())
    assert set(configured) - CSP_NAMES == CONTRACT_NAMES
    assert len(set(configured) & CSP_NAMES) == 1, "exactly one of CSP / CSP-Report-Only"

    edge = load_handler(edge_dir, source=handler_file)
    for event_file in EVENT_FILES:
        headers = edge.handler(load_event(event_file), None)["headers"]
        assert_security_headers(headers, configured)
    assert list((edge_dir).glob("__pycache__")) == []
