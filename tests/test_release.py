"""publish-site, release-image and promote against a local moto server (tests/aws_standins.py).

publish-site uploads the real Vite React build of tests/browser (the ``dist`` fixture the
browser check uses); the test reads back every object's headers, the order of the uploads as the
moto server logged the requests, and the invalidation CloudFront recorded. release-image and
promote must change exactly the ApiImageDigest parameter of the regional stand-in stack (same
template, every other parameter kept). All of S3, CloudFront (CreateInvalidation,
GetInvalidation and its waiter), ECR (DescribeImages), CloudFormation (UpdateStack with
UsePreviousTemplate/UsePreviousValue and its waiter) and STS run in moto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws_standins import FakeEnvironment, Moto, api_repository, deploy_fake_environment, push_image
from tests.helpers import config
from tracker_infra.cli import main
from tracker_infra.rendering import EDGE_REGION

# What each file of a Vite build must be served as (the rule, written out independently).
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


def state_of(env: FakeEnvironment) -> tuple[Any, ...]:
    """What the commands under test could change in the dev environment: both stacks (status,
    parameters, last update), the site bucket's objects, the invalidations, the images."""
    stacks = tuple(
        (stack["StackId"], stack["StackStatus"], str(stack.get("LastUpdatedTime")),
         tuple(sorted((p["ParameterKey"], p["ParameterValue"]) for p in stack.get("Parameters", []))))
        for name, region in ((env.cfg.stack_name, env.cfg.region), (env.cfg.edge_stack_name, EDGE_REGION))
        for stack in env.client("cloudformation", region).describe_stacks(StackName=name)["Stacks"])
    edge = env.outputs[env.cfg.edge_stack_name]
    objects = tuple((o["Key"], o["ETag"]) for o in env.client("s3", EDGE_REGION).list_objects_v2(
        Bucket=edge["FrontendBucketName"]).get("Contents", []))
    invalidations = env.client("cloudfront", EDGE_REGION).list_invalidations(
        DistributionId=edge["DistributionId"])["InvalidationList"]["Quantity"]
    images = tuple(sorted(str(i) for i in env.client("ecr").list_images(
        repositoryName=api_repository(env.cfg))["imageIds"]))
    return stacks, objects, invalidations, images


@dataclass
class Reused:
    env: FakeEnvironment | None = None
    state: tuple[Any, ...] = ()


@pytest.fixture(scope="module")
def reused_dev() -> Reused:
    return Reused()


@pytest.fixture
def dev(moto: Moto, reused_dev: Reused, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Iterator[FakeEnvironment]:
    """The fake dev environment as deploy_fake_environment makes it. Made again (after a reset of
    the server) only when the last one changed, or another test reset the server: most tests
    here must change nothing, and prove it."""
    from botocore.exceptions import ClientError

    if reused_dev.env is not None:
        try:
            pristine = state_of(reused_dev.env) == reused_dev.state
        except ClientError:  # gone: the server was reset since
            pristine = False
        if not pristine:
            reused_dev.env = None
    if reused_dev.env is None:
        moto.reset()
        reused_dev.env = deploy_fake_environment(moto, config("dev"))
        reused_dev.state = state_of(reused_dev.env)
    env = reused_dev.env.with_session(moto.session(reused_dev.env.cfg.account))
    moto.use(monkeypatch, tmp_path, {"default": env.cfg.account})
    yield env


def logged_puts(moto: Moto, bucket: str, start: int) -> list[str]:
    """The object keys PUT into ``bucket`` after byte ``start`` of the moto server's request log,
    in the order the server received them."""
    log = moto.server.log_path.read_bytes()[start:].decode(errors="replace")
    return re.findall(rf'"PUT /{re.escape(bucket)}/(\S+) HTTP', log)


def expected_headers(key: str, env: FakeEnvironment) -> tuple[str, str]:
    cache = env.cfg.frontend.cache
    if key.endswith(".html"):
        return TYPES[".html"], f"public, max-age={cache.html_seconds}"
    long = re.fullmatch(r"assets/[a-z]+-[A-Za-z0-9_-]{8}\.[a-z]+", key)
    return (TYPES[Path(key).suffix], f"public, max-age={cache.assets_seconds}, immutable" if long
            else f"public, max-age={cache.default_seconds}")


@pytest.mark.slow
def test_publish_site_uploads_the_vite_build(dev: FakeEnvironment, moto: Moto, dist: Path) -> None:
    bucket = dev.outputs[dev.cfg.edge_stack_name]["FrontendBucketName"]
    s3 = dev.client("s3", EDGE_REGION)
    s3.put_object(Bucket=bucket, Key="assets/index-PrEvIoUs.js", Body=b"previous release")
    files = sorted(p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file())
    assert {"index.html", "favicon.svg"} <= set(files)
    assert any(re.fullmatch(r"assets/index-[A-Za-z0-9_-]{8}\.js", f) for f in files)

    start = moto.server.log_path.stat().st_size
    mark = moto.recorded()
    assert main(["publish-site", "--env", "dev", str(dist)]) == 0
    assert moto.denied_to_the_deploy_role(dev.cfg, mark) == []  # as dev's bootstrap deploy role

    # Every object with its type and cache time; the previous release's asset is still there.
    for key in files:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head["CacheControl"]) == expected_headers(key, dev), key
        assert head["ContentLength"] == (dist / key).stat().st_size
    assert s3.get_object(Bucket=bucket, Key="assets/index-PrEvIoUs.js")["Body"].read() == b"previous release"
    _html_last_then_one_invalidation(dev, moto, bucket, start, files)


def _html_last_then_one_invalidation(dev: FakeEnvironment, moto: Moto, bucket: str, start: int,
                                     files: list[str]) -> None:
    """Upload order: each file once, every non-HTML file before any HTML, index.html last; then
    one invalidation, of / and the HTML paths (exit 0: the waiter saw it complete)."""
    puts = logged_puts(moto, bucket, start)
    assert sorted(puts) == files
    html = [i for i, key in enumerate(puts) if key.endswith(".html")]
    assert html == list(range(len(puts) - len(html), len(puts)))
    assert puts[-1] == "index.html"
    cloudfront = dev.client("cloudfront", EDGE_REGION)
    distribution = dev.outputs[dev.cfg.edge_stack_name]["DistributionId"]
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
    assert len(listed) == 1
    invalidation = cloudfront.get_invalidation(DistributionId=distribution,
                                               Id=listed[0]["Id"])["Invalidation"]
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/", "/index.html"]


@pytest.mark.slow
def test_publish_site_refuses_a_build_without_index_html(
        dev: FakeEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "assets" / "index-AbCdEf12.js").write_text("export {}")

    assert main(["publish-site", "--env", "dev", str(build)]) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{build}: index.html: missing" in error
    bucket = dev.outputs[dev.cfg.edge_stack_name]["FrontendBucketName"]
    assert dev.client("s3", EDGE_REGION).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.slow
def test_publish_site_dry_run_prints_the_plan_and_uploads_nothing(
        dev: FakeEnvironment, dist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish-site", "--env", "dev", str(dist), "--dry-run"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:2] == ["upload", "index.html"]
    assert lines[-1] == "invalidate / /index.html"
    bucket = dev.outputs[dev.cfg.edge_stack_name]["FrontendBucketName"]
    assert dev.client("s3", EDGE_REGION).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def template_of(env: FakeEnvironment) -> str:
    return str(env.client("cloudformation").get_template(StackName=env.cfg.stack_name)["TemplateBody"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dev", "staging"])  # staging: DeletionProtection kept as well
def test_release_image_changes_only_the_image_parameter(
        name: str, moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    moto.reset()
    env = deploy_fake_environment(moto, config(name))
    moto.use(monkeypatch, tmp_path, {"default": env.cfg.account})
    before, template = env.parameters(), template_of(env)
    assert set(before) == ({"ApiImageDigest", "DeletionProtection"} if name == "staging"
                           else {"ApiImageDigest"})
    digest = push_image(env.client("ecr"), api_repository(env.cfg), "second")
    repository = env.outputs[env.cfg.stack_name]["ApiRepositoryUri"]

    mark = moto.recorded()
    assert main(["release-image", "--env", name, f"{repository}@{digest}"]) == 0
    assert moto.denied_to_the_deploy_role(env.cfg, mark) == []  # as the environment's deploy role

    assert env.parameters() == {**before, "ApiImageDigest": digest}
    assert template_of(env) == template
    stack = env.client("cloudformation").describe_stacks(StackName=env.cfg.stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["ApiImageDigest"] == digest


@pytest.mark.slow
@pytest.mark.parametrize("image, message", [
    ("{repository}:latest", "IMAGE: 'x' is not a digest reference"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/other@sha256:" + "0" * 64,
     "IMAGE: repository: 123456789012.dkr.ecr.us-east-1.amazonaws.com/other is not dev's repository"),
    ("{repository}@sha256:" + "0" * 64, f"IMAGE: digest: sha256:{'0' * 64} is not in"),
])
def test_release_image_refuses_and_changes_nothing(
        dev: FakeEnvironment, image: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = dev.parameters()
    image = image.format(repository=dev.outputs[dev.cfg.stack_name]["ApiRepositoryUri"])
    message = message.replace("'x'", repr(image))

    assert main(["release-image", "--env", "dev", image]) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"error: {message}")
    assert dev.parameters() == before


@pytest.fixture
def staging_and_production(moto: Moto, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Path) -> tuple[FakeEnvironment, FakeEnvironment]:
    moto.reset()
    staging, production = (deploy_fake_environment(moto, config(n)) for n in ("staging", "production"))
    digest = push_image(staging.client("ecr"), api_repository(staging.cfg), "candidate")
    repository = staging.outputs[staging.cfg.stack_name]["ApiRepositoryUri"]
    moto.use(monkeypatch, tmp_path, {"staging": staging.cfg.account, "production": production.cfg.account})
    monkeypatch.setenv("AWS_PROFILE", "staging")
    assert main(["release-image", "--env", "staging", f"{repository}@{digest}"]) == 0
    monkeypatch.delenv("AWS_PROFILE")
    return staging, production


PROMOTE = ["promote", "--from", "staging", "--to", "production",
           "--from-profile", "staging", "--to-profile", "production"]


@pytest.mark.slow
def test_promote_releases_the_digest_staging_runs(
        moto: Moto, staging_and_production: tuple[FakeEnvironment, FakeEnvironment]) -> None:
    staging, production = staging_and_production
    digest = staging.parameters()["ApiImageDigest"]
    # The image copied unchanged into production's repository (what crane copy does).
    assert push_image(production.client("ecr"), api_repository(production.cfg), "candidate") == digest
    before, template = production.parameters(), template_of(production)
    assert before["ApiImageDigest"] != digest

    mark = moto.recorded()
    assert main(PROMOTE) == 0
    # each profile's calls as its environment's deploy role: staging's reads, production's release
    assert moto.denied_to_the_deploy_role(staging.cfg, mark) == []
    assert moto.denied_to_the_deploy_role(production.cfg, mark) == []

    assert production.parameters() == {**before, "ApiImageDigest": digest}
    assert before["DeletionProtection"] == "true"
    assert template_of(production) == template


@pytest.mark.slow
def test_promote_refuses_an_image_not_copied_to_production(
        staging_and_production: tuple[FakeEnvironment, FakeEnvironment],
        capsys: pytest.CaptureFixture[str]) -> None:
    staging, production = staging_and_production
    before = production.parameters()

    assert main(PROMOTE) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{staging.parameters()['ApiImageDigest']} is not in" in error
    assert "crane copy" in error
    assert production.parameters() == before
