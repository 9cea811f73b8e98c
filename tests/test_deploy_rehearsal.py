"""Deploy rehearsal: the real ``sam deploy --config-env dev`` and ``--config-env dev-edge``,
run against a moto server on localhost (no machine here reaches AWS).

How each stack goes out:

1. ``sam deploy --config-env <ce> --no-execute-changeset``, from the repository root, exactly as
   a person types it: the SAM CLI reads samconfig.toml, takes the template named there, packages
   its local artifacts (the edge function's code from ``rendered/dev/edge/``, the rotation
   function's from ``rendered/dev/database-rotation/``) into the bucket it
   names (``s3_bucket``, the account's artifact bucket from its bootstrap stack) under the
   config-env's ``s3_prefix``, uploads the packaged template
   and creates a change set. moto would not run the template's transforms, so that change set is
   deleted unexecuted. The other four config-envs (staging, production and their -edge) go this
   far too, which proves that each resolves from the repository root.
2. The packaged template the SAM CLI uploaded is read back from moto's S3 and its transforms are
   run here, in the order the template declares them, as CloudFormation would run them:

   - ``AWS::Serverless-2016-10-31``: samtranslator, the library behind CloudFormation's SAM
     transform, offline (the edge function becomes a Lambda function, role and version).
   - any other transform fails the rehearsal, naming it.

   Custom resources are left out (moto would run their functions in Docker); their functions
   are deployed, and what they do is tested on its own (tests/test_database_user_setup.py). The
   rotation schedules stay in the copy, but moto does not model them (it skips the type): the
   rotation function is deployed, and its steps are tested on their own
   (tests/test_database_rotation.py).

   Then the known moto defects are worked around in the copy (``MOTO_GAPS``, each with its reason),
   and the ACM certificate ARNs from vars/ are replaced by those of certificates issued in moto
   first, as on a first deployment (moto makes up its own ARNs; the ALB listener checks them).
3. ``sam deploy --config-env <ce> --config-file <repo>/samconfig.toml --template-file <copy>``:
   the copy replaces samconfig's ``template_file``; stack name, region, capabilities, tags, the S3
   settings and ``fail_on_empty_changeset`` still come from the config-env. (``--config-file`` is
   needed: with ``--template-file`` the SAM CLI looks for samconfig.toml beside the template.)
4. A second deploy of the regional stack with ``--parameter-overrides ApiImageDigest=sha256:...``
   (the routine release) must update it, and a third without overrides must keep that digest; a
   second deploy of the edge stack with nothing changed must pass.

The two stacks and the four change sets run three at a time (the SAM CLI's start-up, about 1.5 s
of CPU per run, is most of the cost); the fixture prints each step's time.

Proves: the config-envs resolve (stack names, region, tags and capabilities from samconfig.toml
reach the stacks, and agree with vars/), the edge function's code package is built from
``rendered/dev/edge/`` and the rotation function's from ``rendered/dev/database-rotation/`` (and
the function deployed), both stacks reach CREATE_COMPLETE, the parameters arrive, an image change
updates the stack (UPDATE_COMPLETE), and an empty change set does not fail the deploy.
Does not prove: that AWS accepts every property (moto skips resource types it does not model and
checks few properties), IAM permissions, the rotation schedules, quotas, or how long AWS takes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers import config
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rehearsal.moto_copy import (
    Prepared,
    Template,
    create_artifact_buckets,
    prepare_for_moto,
    sam_env,
)
from tracker_infra.rehearsal.server import MotoServer
from tracker_infra.rendering import ROOT
from tracker_infra.schema import Config

pytestmark = pytest.mark.rehearsal

SAM = Path(sys.executable).parent / "sam"
SAMCONFIG = ROOT / "samconfig.toml"
ENV = "dev"
CONFIG_ENVS = (ENV, f"{ENV}-edge")
# The other config-envs go as far as a change set: resolved from the repository root, packaged,
# never executed (production's confirm_changeset is not reached with --no-execute-changeset).
OTHER_CONFIG_ENVS = ("staging", "staging-edge", "production", "production-edge")
NEW_DIGEST = "sha256:" + "ab" * 32  # a release: the image digest in the stack's repository
BUDGET_SECONDS = 120


def settings(config_env: str) -> dict[str, Any]:
    data = tomllib.loads(SAMCONFIG.read_text())
    return dict(data[config_env]["deploy"]["parameters"])


def samconfig_tags(config_env: str) -> dict[str, str]:
    from samcli.cli.types import CfnTags  # how the SAM CLI itself reads the option

    return dict(CfnTags().convert(settings(config_env)["tags"], None, None))




@dataclass
class Rehearsal:
    server: MotoServer
    env: dict[str, str]
    workdir: Path
    timings: dict[str, float] = field(default_factory=dict)
    session: boto3.session.Session = field(default_factory=lambda: boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing"))

    def copy(self, config_env: str) -> Path:
        """Where the copy of a config-env's template that moto can deploy is written."""
        return self.workdir / f"{config_env}.json"

    def deploy_copy_args(self, config_env: str) -> list[str]:
        return ["deploy", "--config-env", config_env, "--config-file", str(SAMCONFIG),
                "--template-file", str(self.copy(config_env))]

    def client(self, service: str, region: str) -> Any:
        return self.session.client(service, region_name=region, endpoint_url=self.server.endpoint)

    def sam(self, label: str, *args: str) -> str:
        started = time.perf_counter()
        done = subprocess.run([str(SAM), *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=BUDGET_SECONDS, stdin=subprocess.DEVNULL)
        self.timings[label] = time.perf_counter() - started
        if done.returncode != 0:
            moto_log = self.server.log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"sam {' '.join(args)} exited {done.returncode}\n--- stdout\n"
                        f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}\n--- moto\n{moto_log}")
        return done.stdout

    def stack(self, config_env: str) -> dict[str, Any]:
        s = settings(config_env)
        cloudformation = self.client("cloudformation", s["region"])
        return dict(cloudformation.describe_stacks(StackName=s["stack_name"])["Stacks"][0])


@dataclass
class StackRun:
    config_env: str
    packaged: Template
    prepared: Prepared
    created: dict[str, Any]
    updated: dict[str, Any] | None = None
    update_output: str = ""
    redeployed: dict[str, Any] | None = None


def packaged_template(rehearsal: Rehearsal, config_env: str) -> Template:
    """The packaged template the SAM CLI uploaded for this config-env (its s3_prefix)."""
    s = settings(config_env)
    s3 = rehearsal.client("s3", s["region"])
    bucket = s["s3_bucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{s['s3_prefix']}/").get("Contents", [])
    keys = [o["Key"] for o in listed if o["Key"].endswith(".template")]
    assert len(keys) == 1, f"expected one packaged template under {s['s3_prefix']}/, found {keys}"
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode()
    return dict(load_template(body))


def deploy(rehearsal: Rehearsal, config_env: str, swaps: dict[str, str]) -> StackRun:
    s = settings(config_env)
    rehearsal.sam(f"{config_env}: package + change set",
                  "deploy", "--config-env", config_env, "--no-execute-changeset")
    packaged = packaged_template(rehearsal, config_env)
    cloudformation = rehearsal.client("cloudformation", s["region"])
    stack_id = rehearsal.stack(config_env)["StackId"]
    for summary in cloudformation.list_change_sets(StackName=s["stack_name"])["Summaries"]:
        if summary["StackId"] == stack_id:  # moto lists every stack's change sets
            cloudformation.delete_change_set(ChangeSetName=summary["ChangeSetId"])
    cloudformation.delete_stack(StackName=s["stack_name"])  # REVIEW_IN_PROGRESS, never executed

    prepared = prepare_for_moto(packaged, s["region"], swaps)
    rehearsal.copy(config_env).write_text(json.dumps(prepared.template, indent=1))
    rehearsal.sam(f"{config_env}: deploy", *rehearsal.deploy_copy_args(config_env))
    return StackRun(config_env, packaged, prepared, rehearsal.stack(config_env))


def certificates_in_moto(rehearsal: Rehearsal, cfg: Config) -> dict[str, str]:
    """Issue the certificates vars/ names (as a first deployment does, docs/deploying.md).

    moto makes up its own ARNs, so the copies use those in place of the ARNs from vars/.
    """
    wanted = [(cfg.api.certificate_arn, cfg.api.domain, cfg.region),
              (cfg.frontend.certificate_arn, cfg.frontend.domain, "us-east-1")]
    return {arn: rehearsal.client("acm", region).request_certificate(DomainName=domain)["CertificateArn"]
            for arn, domain, region in wanted}


@dataclass
class ChangeSetOnly:
    stack: dict[str, Any]
    change_sets: list[dict[str, Any]]
    packaged: Template


def change_set_only(rehearsal: Rehearsal, config_env: str) -> ChangeSetOnly:
    s = settings(config_env)
    rehearsal.sam(f"{config_env}: package + change set",
                  "deploy", "--config-env", config_env, "--no-execute-changeset")
    cloudformation = rehearsal.client("cloudformation", s["region"])
    stack = rehearsal.stack(config_env)
    listed = cloudformation.list_change_sets(StackName=s["stack_name"])["Summaries"]
    return ChangeSetOnly(stack, [c for c in listed if c["StackId"] == stack["StackId"]],
                         packaged_template(rehearsal, config_env))


@dataclass
class Result:
    rehearsal: Rehearsal
    runs: dict[str, StackRun]
    change_sets: dict[str, ChangeSetOnly]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Result]:
    workdir = tmp_path_factory.mktemp("rehearsal")
    (workdir / "home").mkdir()
    started = time.perf_counter()
    server = MotoServer.start(workdir / "moto.log")
    try:
        run = Rehearsal(server, sam_env(server, workdir / "home", config(ENV).region), workdir)
        run.timings["moto start"] = time.perf_counter() - started
        cfg = config(ENV)
        create_artifact_buckets(run.client("s3", "us-east-1"),
                                {settings(ce)["s3_bucket"] for ce in CONFIG_ENVS + OTHER_CONFIG_ENVS})
        swaps = certificates_in_moto(run, cfg)

        def app() -> StackRun:
            done = deploy(run, ENV, swaps)
            done.update_output = run.sam(f"{ENV}: release ApiImageDigest", *run.deploy_copy_args(ENV),
                                         "--parameter-overrides", f"ApiImageDigest={NEW_DIGEST}")
            done.updated = run.stack(ENV)
            # a plain deploy afterwards: the SAM CLI sends UsePreviousValue for ApiImageDigest
            run.sam(f"{ENV}: deploy again without overrides", *run.deploy_copy_args(ENV))
            done.redeployed = run.stack(ENV)
            return done

        def edge() -> StackRun:
            config_env = f"{ENV}-edge"
            done = deploy(run, config_env, swaps)
            done.update_output = run.sam(f"{config_env}: deploy again, nothing changed",
                                         *run.deploy_copy_args(config_env))
            done.updated = run.stack(config_env)
            return done

        # The stacks are independent; the SAM CLI's start-up (about 1.5 s of CPU a run) dominates.
        with ThreadPoolExecutor(max_workers=3) as pool:
            pipelines = {ENV: pool.submit(app), f"{ENV}-edge": pool.submit(edge)}
            others = {ce: pool.submit(change_set_only, run, ce) for ce in OTHER_CONFIG_ENVS}
            runs = {ce: future.result() for ce, future in pipelines.items()}
            change_sets = {ce: future.result() for ce, future in others.items()}
        run.timings["total"] = time.perf_counter() - started
        summary = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in run.timings.items())
        print(f"\ndeploy rehearsal: {summary}")
        yield Result(run, runs, change_sets)
    finally:
        server.stop()


# --- what the rehearsal proves ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("config_env", CONFIG_ENVS)
def test_stack_is_created_with_samconfig_name_region_and_tags(
        rehearsal: Result, config_env: str) -> None:
    cfg = config(ENV)
    stack = rehearsal.runs[config_env].created
    name = cfg.edge_stack_name if config_env.endswith("-edge") else cfg.stack_name
    region = "us-east-1" if config_env.endswith("-edge") else cfg.region
    assert stack["StackName"] == name == settings(config_env)["stack_name"]
    assert stack["StackId"].split(":")[3] == region == settings(config_env)["region"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
    assert tags == samconfig_tags(config_env) == cfg.tags


@pytest.mark.slow
@pytest.mark.parametrize("config_env", CONFIG_ENVS)
def test_deployed_copy_leaves_out_only_the_custom_resources(rehearsal: Result, config_env: str) -> None:
    run = rehearsal.runs[config_env]
    expected = sorted(i for i, r in run.packaged["Resources"].items() if r["Type"].startswith("Custom::"))
    assert sorted(run.prepared.removed) == expected
    packaged_ids = {i for i, r in run.packaged["Resources"].items()
                    if not r["Type"].startswith("AWS::Serverless::")}
    assert packaged_ids - set(expected) <= set(run.prepared.template["Resources"])


def _packaged_code(rehearsal: Result, config_env: str, location: str) -> dict[str, bytes]:
    """The files of the zip the SAM CLI uploaded to ``location`` (s3://bucket/key), under the
    config-env's s3_prefix."""
    assert location.startswith("s3://"), location
    bucket, key = location.removeprefix("s3://").split("/", 1)
    assert key.startswith(f"{settings(config_env)['s3_prefix']}/")
    body = rehearsal.rehearsal.client("s3", "us-east-1").get_object(Bucket=bucket, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        return {name: package.read(name) for name in package.namelist() if not name.endswith("/")}


def _folder(source: Path) -> dict[str, bytes]:
    return {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_edge_code_package_is_built_from_rendered_dev_edge(rehearsal: Result) -> None:
    run = rehearsal.runs[f"{ENV}-edge"]
    functions = {i: r for i, r in run.packaged["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 1, functions
    (function,) = functions.values()
    on_disk = _folder(ROOT / "rendered" / ENV / "edge")
    assert {"handler.py", "headers.json"} <= set(on_disk)
    assert _packaged_code(rehearsal, run.config_env, function["Properties"]["CodeUri"]) == on_disk


@pytest.mark.slow
def test_rotation_code_package_is_built_from_rendered_dev_database_rotation(rehearsal: Result) -> None:
    """The AWS::Lambda::Function's local Code folder, zipped by the SAM CLI like a CodeUri, and the
    function deployed from it."""
    run = rehearsal.runs[ENV]
    code = run.packaged["Resources"]["DatabaseRotationFunction"]["Properties"]["Code"]
    assert set(code) == {"S3Bucket", "S3Key"}, code
    on_disk = _folder(ROOT / "rendered" / ENV / "database-rotation")
    assert {"database_rotation.py", "database_user.py", "postgres_login.py"} == set(on_disk)
    assert _packaged_code(rehearsal, ENV, f"s3://{code['S3Bucket']}/{code['S3Key']}") == on_disk
    name = config(ENV).stack_name + "-secret-rotation"
    lambda_ = rehearsal.rehearsal.client("lambda", config(ENV).region)
    assert lambda_.get_function(FunctionName=name)["Configuration"]["Handler"] == "database_rotation.handler"


@pytest.mark.slow
def test_edge_function_and_its_published_version_exist(rehearsal: Result) -> None:
    moto = rehearsal.rehearsal
    resources = moto.client("cloudformation", "us-east-1").list_stack_resources(
        StackName=settings(f"{ENV}-edge")["stack_name"])["StackResourceSummaries"]
    functions = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"]
    assert len(functions) == 1, resources
    lambda_ = moto.client("lambda", "us-east-1")
    assert lambda_.get_function(FunctionName=functions[0])["Configuration"]["Runtime"] == "python3.12"
    listed = lambda_.list_versions_by_function(FunctionName=functions[0])["Versions"]
    versions = [v["Version"] for v in listed]
    assert "1" in versions  # AutoPublishAlias published a numbered version for CloudFront


def _parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


@pytest.mark.slow
def test_parameters_arrive(rehearsal: Result) -> None:
    run = rehearsal.runs[ENV]
    declared = run.prepared.template.get("Parameters", {})
    assert "ApiImageDigest" in declared, "the regional stack declares no ApiImageDigest parameter"
    # no release yet: the default, empty (the stack runs no task until a digest is passed)
    assert _parameters(run.created)["ApiImageDigest"] == "" == declared["ApiImageDigest"]["Default"]


@pytest.mark.slow
def test_image_override_updates_the_regional_stack(rehearsal: Result) -> None:
    """The release reaches the stack's parameters. What it changes inside cannot be read back
    here: moto 5.2.5 re-creates a resource on a parameter change only when the resource holds a
    plain Ref to it (the task definition's image is a Fn::Sub behind a condition), and leaves the
    Outputs of a stack made through a change set empty."""
    run = rehearsal.runs[ENV]
    assert run.updated is not None
    assert run.updated["StackStatus"] == "UPDATE_COMPLETE"
    assert _parameters(run.updated)["ApiImageDigest"] == NEW_DIGEST
    assert _parameters(run.created)["ApiImageDigest"] == ""
    # a CLI --parameter-overrides replaces samconfig's; the other settings still apply
    assert {t["Key"]: t["Value"] for t in run.updated["Tags"]} == config(ENV).tags


@pytest.mark.slow
def test_redeploy_without_changes_passes(rehearsal: Result) -> None:
    run = rehearsal.runs[f"{ENV}-edge"]
    assert settings(run.config_env)["fail_on_empty_changeset"] is False
    assert "No changes to deploy" in run.update_output
    assert run.updated is not None and run.updated["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.slow
@pytest.mark.parametrize("config_env", CONFIG_ENVS + OTHER_CONFIG_ENVS)
def test_samconfig_template_file_is_what_was_packaged(rehearsal: Result, config_env: str) -> None:
    """`sam deploy --config-env X` from the repository root found samconfig.toml there and
    packaged the template it names (rendered/<env>/...), uploading it under the s3_prefix."""
    rendered = load_template((ROOT / settings(config_env)["template_file"]).read_text())
    run = rehearsal.runs.get(config_env) or rehearsal.change_sets[config_env]
    packaged = run.packaged
    assert packaged["Resources"].keys() == rendered["Resources"].keys()
    assert packaged.get("Transform") == rendered.get("Transform")
    assert packaged.get("Parameters") == rendered.get("Parameters")


@pytest.mark.slow
@pytest.mark.parametrize("config_env", OTHER_CONFIG_ENVS)
def test_other_config_envs_resolve_to_a_change_set(rehearsal: Result, config_env: str) -> None:
    cfg = config(config_env.removesuffix("-edge"))
    run = rehearsal.change_sets[config_env]
    name = cfg.edge_stack_name if config_env.endswith("-edge") else cfg.stack_name
    region = "us-east-1" if config_env.endswith("-edge") else cfg.region
    assert run.stack["StackName"] == name
    assert run.stack["StackId"].split(":")[3] == region
    assert run.stack["StackStatus"] == "REVIEW_IN_PROGRESS"  # created, waiting, never executed
    assert [c["Status"] for c in run.change_sets] == ["CREATE_COMPLETE"]
    assert {t["Key"]: t["Value"] for t in run.stack.get("Tags", [])} in ({}, cfg.tags)


@pytest.mark.slow
def test_plain_redeploy_keeps_the_overridden_image(rehearsal: Result) -> None:
    """Without --parameter-overrides the SAM CLI asks for each parameter's previous value
    (samcli DeployContext.merge_parameters), so the image stays what the last release set, and
    the template's empty default does not come back."""
    run = rehearsal.runs[ENV]
    assert run.redeployed is not None
    assert _parameters(run.redeployed)["ApiImageDigest"] == NEW_DIGEST
