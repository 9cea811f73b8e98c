"""Architecture pictures (tracker_infra.review.mermaid): real Mermaid syntax, every security-group flow with
its ports, and a picture that follows the template when a flow changes.

The syntax check runs Mermaid's own parser (npm `mermaid`, pinned by tests/mermaid/package-lock.json)
under Node through tests/mermaid/check.mjs, with jsdom standing in for the browser DOM that
Mermaid's label sanitizer needs. `@mermaid-js/parser` alone does not cover flowcharts (its grammars
are info, packet, pie, architecture, gitGraph, radar, treemap...). The check also returns what the
parser understood (vertices, edges with their labels, subgraphs), and the flow assertions read that,
not the text. Skipped only when node or npm is absent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ENVS, config_with, copy_vars, render, stack_of, walk
from tracker_infra.cli import main
from tracker_infra.rendering import ROOT
from tracker_infra.review import mermaid as drawing
from tracker_infra.schema import Config

CHECKER = ROOT / "tests" / "mermaid"
Parsed = dict[str, Any]
Parse = Callable[[dict[str, str]], dict[str, Parsed]]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mermaid() -> Iterator[Parse]:
    """Mermaid's parser under Node: name -> diagram text in, name -> parsed database out."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the Mermaid syntax check needs {', '.join(missing)} (see tests/mermaid/)")
    lock = hashlib.sha256((CHECKER / "package-lock.json").read_bytes()).hexdigest()
    stamp = CHECKER / "node_modules" / ".tracker-lock.sha256"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != lock:
        proc = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
                              cwd=CHECKER, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
        stamp.write_text(lock, encoding="utf-8")

    # One Node process for the session: a line of JSON in, a line of JSON out.
    node = subprocess.Popen(["node", "check.mjs"], cwd=CHECKER, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert node.stdin and node.stdout

    def parse(diagrams: dict[str, str]) -> dict[str, Parsed]:
        node.stdin.write(json.dumps(diagrams) + "\n")
        node.stdin.flush()
        line = node.stdout.readline()
        assert line, node.stderr.read() if node.poll() is not None else "no answer from check.mjs"
        result: dict[str, Parsed] = json.loads(line)
        return result

    try:
        yield parse
    finally:
        node.stdin.close()
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


def _parsed_stacks(cfg: Config, edits: Callable[[dict[str, Any]], None] | None = None,
                   ) -> list[tuple[Any, dict[str, Any]]]:
    docs = [(stack_of(cfg, key), render(cfg, key)) for key in ("app", "edge")]
    if edits:
        edits(docs[0][1])
    return docs


def _blocks(markdown: str) -> dict[str, str]:
    """The Markdown's Mermaid blocks: {"traffic": ..., "resources": ...}."""
    blocks = re.findall(r"```mermaid\n(.*?)```", markdown, re.S)
    assert len(blocks) == 2, markdown
    return {"traffic": blocks[0], "resources": blocks[1]}


@pytest.fixture(scope="session")
def pictures(configs: dict[str, Config]) -> dict[str, str]:
    return {env: drawing.architecture_markdown(env, _parsed_stacks(cfg))
            for env, cfg in configs.items()}


@pytest.fixture(scope="session")
def parsed(pictures: dict[str, str], mermaid: Parse) -> dict[str, Parsed]:
    """"<env>/traffic" and "<env>/resources" -> what Mermaid's parser made of them."""
    return mermaid({f"{env}/{name}": text for env, md in pictures.items()
                    for name, text in _blocks(md).items()})


def _edges(diagram: Parsed) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e["start"], e["end"]): (e["text"], e["stroke"]) for e in diagram["edges"]}


# --- reading the template independently of graph.py ----------------------------------------------


def _refs(node: Any) -> set[str]:
    out = set()
    for n in walk(node):
        if isinstance(n, dict) and "Ref" in n and isinstance(n["Ref"], str):
            out.add(n["Ref"])
    return out


def _in_group(doc: dict[str, Any], group: str) -> list[str]:
    """Resources (not groups or rules) whose properties reference ``group``."""
    return sorted(rid for rid, res in doc["Resources"].items()
                  if not res["Type"].startswith("AWS::EC2::SecurityGroup")
                  and group in _refs(res.get("Properties", {})))


def _only(doc: dict[str, Any], type_: str) -> str:
    found = [rid for rid, res in doc["Resources"].items() if res["Type"] == type_]
    assert len(found) == 1, (type_, found)
    return found[0]


# --- syntax ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVS)
def test_every_picture_parses_with_mermaids_own_parser(env: str, parsed: dict[str, Parsed],
                                                       app: dict[str, dict[str, Any]]) -> None:
    for name in ("traffic", "resources"):
        diagram = parsed[f"{env}/{name}"]
        assert "error" not in diagram, diagram.get("error")
        assert diagram["type"] == "flowchart-v2"
        assert diagram["edges"], f"{env}/{name} has no edges"
    resources = parsed[f"{env}/resources"]
    subgraphs = {s["id"]: s for s in resources["subgraphs"]}
    # One subgraph per stack, and the layers inside it hold the regional stack's main resources.
    assert {"app", "edge", "app__network", "app__database", "app__api", "edge__frontend"} <= set(
        subgraphs)
    doc = app[env]
    for layer, type_ in (("network", "AWS::EC2::VPC"), ("database", "AWS::RDS::DBCluster"),
                         ("api", "AWS::ECS::Service"), ("api", "AWS::ElasticLoadBalancingV2::LoadBalancer")):
        assert f"app_{_only(doc, type_)}" in subgraphs[f"app__{layer}"]["nodes"], (layer, type_)


@pytest.mark.slow
def test_the_parser_rejects_a_broken_picture(mermaid: Parse) -> None:
    """The syntax check can fail: an unclosed label and an arrow into nothing are errors."""
    result = mermaid({"unclosed": 'flowchart LR\n  a["A] --> b\n',
                      "dangling": "flowchart LR\n  a -->\n",
                      "fine": 'flowchart LR\n  a["A"] -->|"tcp 443"| b\n'})
    assert "error" in result["unclosed"] and "error" in result["dangling"]
    assert _edges(result["fine"]) == {("a", "b"): ("tcp 443", "normal")}


@pytest.mark.parametrize("env", ENVS)
def test_node_ids_are_logical_ids_prefixed_by_the_stack(env: str, parsed: dict[str, Parsed],
                                                        configs: dict[str, Config]) -> None:
    docs = dict(_parsed_stacks(configs[env]))
    ids = {f"{stack.key}_{rid}" for stack, doc in docs.items() for rid in doc["Resources"]}
    for vertex in parsed[f"{env}/resources"]["vertices"]:
        assert vertex in ids or re.fullmatch(r"(app|edge)__[A-Za-z0-9]+", vertex), vertex
    # Every resource of a drawn type is a box of its own (or in a collapsed box listing it).
    text = _blocks(drawing.architecture_markdown(env, list(docs.items())))["resources"]
    for stack, doc in docs.items():
        for rid, res in doc["Resources"].items():
            if res["Type"] not in drawing.HIDDEN_TYPES:
                assert f"{stack.key}_{rid}[" in text or re.search(rf"<br/>{rid}(<br/>|\")", text), rid


def test_pictures_are_deterministic(configs: dict[str, Config]) -> None:
    cfg = configs["production"]
    first = drawing.architecture_markdown("production", _parsed_stacks(cfg))
    # Resource order in the template must not matter either.
    reordered = _parsed_stacks(cfg)
    for _, doc in reordered:
        doc["Resources"] = dict(reversed(list(doc["Resources"].items())))
    assert drawing.architecture_markdown("production", reordered) == first


# --- traffic ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_traffic_shows_internet_alb_api_database_with_ports(env: str, parsed: dict[str, Parsed],
                                                            app: dict[str, dict[str, Any]],
                                                            configs: dict[str, Config]) -> None:
    doc = app[env]
    alb = _only(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    service = _only(doc, "AWS::ECS::Service")
    cluster = _only(doc, "AWS::RDS::DBCluster")
    edges = _edges(parsed[f"{env}/traffic"])
    assert edges[("internet", f"app_{alb}")] == ("tcp 80, 443", "normal")
    port = configs[env].api.container_port
    assert edges[(f"app_{alb}", f"app_{service}")] == (f"tcp {port}", "normal")
    assert edges[(f"app_{service}", f"app_{cluster}")] == ("tcp 5432", "normal")
    # Nothing from the internet reaches the tasks or the database directly.
    assert ("internet", f"app_{service}") not in edges and ("internet", f"app_{cluster}") not in edges
    assert edges[(f"app_{service}", "internet")] == ("tcp 443 (via NAT)", "normal")


@pytest.mark.parametrize("env", ENVS)
def test_traffic_holds_every_security_group_rule(env: str, parsed: dict[str, Parsed],
                                                 app: dict[str, dict[str, Any]]) -> None:
    """Each ingress rule of the template (inline or standalone) is an edge carrying its port."""
    doc = app[env]
    edges = _edges(parsed[f"{env}/traffic"])
    rules = []
    for rid, res in doc["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::EC2::SecurityGroup":
            rules += [(rid, r) for r in props.get("SecurityGroupIngress", [])]
        elif res["Type"] == "AWS::EC2::SecurityGroupIngress":
            rules.append((props["GroupId"]["Ref"], props))
    assert len(rules) >= 4
    for group, rule in rules:
        if "SourceSecurityGroupId" in rule:
            sources = [f"app_{r}" for r in _in_group(doc, rule["SourceSecurityGroupId"]["Ref"])]
        else:
            assert rule["CidrIp"] == "0.0.0.0/0", rule  # the only CIDR ingress the design allows
            sources = ["internet"]
        for src in sources:
            for dst in (f"app_{r}" for r in _in_group(doc, group)):
                label, _ = edges[(src, dst)]
                assert re.search(rf"\btcp .*\b{rule['FromPort']}\b", label), (src, dst, label)


@pytest.mark.parametrize("env", ENVS)
def test_traffic_shows_cloudfront_oac_and_the_edge_function(env: str,
                                                            parsed: dict[str, Parsed]) -> None:
    edges = _edges(parsed[f"{env}/traffic"])
    assert edges[("internet", "edge_Distribution")][0].startswith("HTTPS 443")
    assert "via OAC sigv4" in edges[("edge_Distribution", "edge_SiteBucket")][0]
    label, stroke = edges[("edge_Distribution", "edge_SecurityHeadersFunction")]
    assert label.startswith("origin-response, all ") and stroke == "dotted"


Edit = Callable[[dict[str, Any]], None] | None


def _traffic(mermaid: Parse, variants: dict[str, tuple[Config, Edit]],
             ) -> dict[str, dict[tuple[str, str], tuple[str, str]]]:
    """name -> the traffic edges Mermaid parsed for that config and template edit (one Node run)."""
    texts = {name: _blocks(drawing.architecture_markdown(cfg.environment, _parsed_stacks(cfg, edit)))
             ["traffic"] for name, (cfg, edit) in variants.items()}
    result = mermaid(texts)
    assert not [r["error"] for r in result.values() if "error" in r], result
    return {name: _edges(r) for name, r in result.items()}


def _ingress_only(doc: dict[str, Any]) -> None:
    doc["Resources"]["DatabaseIngressFromAlb"] = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {"GroupId": {"Ref": "DatabaseSecurityGroup"}, "IpProtocol": "tcp",
                       "SourceSecurityGroupId": {"Ref": "AlbSecurityGroup"},
                       "FromPort": 5432, "ToPort": 5432}}


def _both_sides(doc: dict[str, Any]) -> None:
    _ingress_only(doc)
    doc["Resources"]["AlbSecurityGroup"]["Properties"]["SecurityGroupEgress"].append({
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "DestinationSecurityGroupId": {"Ref": "DatabaseSecurityGroup"}})


@pytest.mark.slow
def test_opening_the_database_to_the_load_balancer_shows_up(mermaid: Parse,
                                                            configs: dict[str, Config]) -> None:
    cfg = configs["staging"]
    seen = _traffic(mermaid, {"before": (cfg, None), "half": (cfg, _ingress_only),
                              "opened": (cfg, _both_sides)})
    alb, cluster = "app_ApiLoadBalancer", "app_DatabaseCluster"
    assert (alb, cluster) not in seen["before"]
    # The ALB's egress allows 443 only: the new ingress is drawn, dotted, as blocked by it.
    assert seen["half"][(alb, cluster)] == (
        "tcp 5432 — blocked: AlbSecurityGroup egress does not allow it", "dotted")
    # Both sides open: a plain edge, and nothing else in the picture moved.
    assert seen["opened"][(alb, cluster)] == ("tcp 5432", "normal")
    assert {k: v for k, v in seen["opened"].items() if k != (alb, cluster)} == seen["before"]


@pytest.mark.slow
def test_a_new_container_port_changes_the_alb_to_api_edge(mermaid: Parse) -> None:
    cfg = config_with("staging", {"api": {"container_port": 8443}})
    edges = _traffic(mermaid, {"moved": (cfg, None)})["moved"]
    assert edges[("app_ApiLoadBalancer", "app_ApiService")] == ("tcp 8443", "normal")


def test_an_egress_rule_without_ingress_is_drawn_as_blocked(configs: dict[str, Config]) -> None:
    def egress_only(doc: dict[str, Any]) -> None:
        doc["Resources"]["ApiEgressToAlb"] = {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {"GroupId": {"Ref": "ApiSecurityGroup"}, "IpProtocol": "tcp",
                           "DestinationSecurityGroupId": {"Ref": "AlbSecurityGroup"},
                           "FromPort": 9000, "ToPort": 9000}}

    md = drawing.architecture_markdown("staging", _parsed_stacks(configs["staging"], egress_only))
    assert ('app_ApiService -.->|"tcp 9000 — blocked: AlbSecurityGroup ingress does not allow it"|'
            " app_ApiLoadBalancer") in md


# --- layers, by type -----------------------------------------------------------------------------------


def _monitoring_additions(doc: dict[str, Any]) -> None:
    """A topic, six alarms on the load balancer, a dashboard, a function and its log group."""
    res = doc["Resources"]
    res["TestTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {}}
    for n in range(6):
        res[f"TestApiAlarm{n}"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmActions": [{"Ref": "TestTopic"}],
            "Dimensions": [{"Name": "LoadBalancer",
                            "Value": {"Fn::GetAtt": ["ApiLoadBalancer", "LoadBalancerFullName"]}}]}}
    res["TestDashboard"] = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardBody": {"Fn::Sub": "{\"cluster\": \"${DatabaseCluster}\"}"}}}
    res["TestLogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {}}
    res["TestFunction"] = {"Type": "AWS::Lambda::Function", "Properties": {
        "LoggingConfig": {"LogGroup": {"Ref": "TestLogGroup"}},
        "Environment": {"Variables": {"SECRET": {"Ref": "DatabaseSecret"}}}}}


def _alarm_boxes(result: dict[str, Any], alarms: list[str]) -> None:
    """Alarms collapse into one box per layer they watch, each listing its alarms."""
    boxes = {v: text for v, text in result["vertices"].items() if v.startswith("app__CloudWatchAlarm")}
    listed = [line for text in boxes.values() for line in text.split("<br>")[1:]]
    alone = [a for a in alarms if f"app_{a}" in result["vertices"]]
    assert sorted(listed + alone) == sorted(alarms)
    assert all(f"<br>TestApiAlarm{n}" in boxes["app__CloudWatchAlarmApi"] for n in range(6))


@pytest.mark.slow
def test_new_resources_find_their_layer_without_code_changes(mermaid: Parse,
                                                             configs: dict[str, Config]) -> None:
    """Monitoring by type; a log group and a function join the layer of what uses them; many
    alarms become one box."""
    docs = _parsed_stacks(configs["staging"], _monitoring_additions)
    alarms = [r for r, res in docs[0][1]["Resources"].items() if res["Type"] == "AWS::CloudWatch::Alarm"]
    md = drawing.architecture_markdown("staging", docs)
    result = mermaid({"r": _blocks(md)["resources"]})["r"]
    assert "error" not in result, result
    nodes = {s["id"]: set(s["nodes"]) for s in result["subgraphs"]}
    assert {"app_TestTopic", "app_TestDashboard", "app__CloudWatchAlarmApi"} <= nodes["app__monitoring"]
    assert "app_TestFunction" in nodes["app__database"]
    # the log group: a box of its own, or listed in the database layer's box of its log groups
    # (more than COLLAPSE_OVER of one type in one layer become one box)
    assert "app_TestLogGroup" in nodes["app__database"] or any(
        "TestLogGroup" in result["vertices"][v] for v in nodes["app__database"] if v.startswith("app__"))
    _alarm_boxes(result, alarms)
    edges = _edges(result)
    assert {("app__CloudWatchAlarmApi", "app_TestTopic"), ("app__CloudWatchAlarmApi", "app_ApiLoadBalancer"),
            ("app_TestFunction", "app_DatabaseSecret")} <= set(edges)
    assert result["vertices"]["app_TestDashboard"].endswith("<br>charts 1 resource")
    assert not [e for e in edges if e[0] == "app_TestDashboard"]


# --- files and command ------------------------------------------------------------------------------------


def test_committed_pictures_are_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--all", "--check"]) == 0, capsys.readouterr().out


def test_graph_command_writes_checks_and_rejects(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "docs"
    assert main(["graph", "--env", "staging", "--out", str(out)]) == 0
    picture = out / "staging.md"
    assert picture.read_text(encoding="utf-8").startswith("# Architecture: staging\n")
    assert main(["graph", "--env", "staging", "--out", str(out), "--check"]) == 0
    picture.write_text(picture.read_text(encoding="utf-8").replace("tcp 5432", "tcp 5433"))
    capsys.readouterr()
    assert main(["graph", "--env", "staging", "--out", str(out), "--check"]) == 3
    assert f"stale: {picture} (differs)" in capsys.readouterr().out
    assert main(["graph", "--env", "qa", "--out", str(out)]) == 2
    assert "error: " in capsys.readouterr().err


def test_render_all_writes_the_pictures_beside_the_output(tmp_path: Path,
                                                         pictures: dict[str, str]) -> None:
    vars_dir = copy_vars(tmp_path)
    assert main(["--all", "--vars", str(vars_dir), "--out", str(tmp_path / "rendered")]) == 0
    for env in ENVS:
        written = (tmp_path / "docs" / "architecture" / f"{env}.md").read_text(encoding="utf-8")
        assert written == pictures[env]


def test_drawing_leaves_the_parsed_templates_untouched(configs: dict[str, Config]) -> None:
    docs = _parsed_stacks(configs["dev"])
    before = copy.deepcopy(docs)
    drawing.architecture_markdown("dev", docs)
    assert docs == before
