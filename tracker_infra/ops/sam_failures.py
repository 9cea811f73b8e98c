"""A failed SAM CLI run said in words: what failed, which resource, what to do.

The SAM CLI ends a failure with one line of its own (the last of its output), which names
neither the bucket nor the step that makes it. The failures it is known to end with are turned
into the project's one line; any other is shown as the SAM CLI said it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

# What the SAM CLI says when the s3_bucket it packages into is missing (samcli/lib/package/
# s3_uploader.py raises NoSuchBucketError on S3's NoSuchBucket; samcli/commands/package/
# exceptions.py words it "S3 Bucket does not exist.").
MISSING_BUCKET = ("S3 Bucket does not exist", "NoSuchBucket")


def artifact_bucket(samconfig: Path, config_env: str) -> str:
    """The s3_bucket ``config_env`` packages into (samconfig.toml), '?' when it names none."""
    with samconfig.open("rb") as file:
        parameters = tomllib.load(file).get(config_env, {}).get("deploy", {}).get("parameters", {})
    return str(parameters.get("s3_bucket", "?"))


def explain(samconfig: Path, config_env: str, last_line: str) -> str | None:
    """The one line for a known failure of `sam deploy --config-env config_env`, else None."""
    if any(said in last_line for said in MISSING_BUCKET):
        bucket = artifact_bucket(samconfig, config_env)
        return (f"{config_env}: the artifact bucket {bucket} does not exist (s3_bucket in "
                f"{samconfig.name} [{config_env}]); nothing was planned (allowed: deploy the "
                "account's bootstrap stack first, which creates it: docs/deploying.md, \"The "
                "bootstrap stack\")")
    return None
