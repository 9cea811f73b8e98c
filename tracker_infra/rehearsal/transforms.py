"""The transforms CloudFormation runs on a template before it creates resources, run offline.

- ``AWS::Serverless-2016-10-31``: samtranslator, the library behind CloudFormation's own SAM
  transform (the edge function becomes a function, a role and a version).

Any other transform is refused, naming it.
"""

from __future__ import annotations

import copy
from typing import Any

Template = dict[str, Any]
SAM = "AWS::Serverless-2016-10-31"


def declared_transforms(template: Template) -> list[str]:
    value = template.get("Transform", [])
    return [value] if isinstance(value, str) else list(value)


def sam_transform(template: Template, region: str) -> Template:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(managed_policy_map=None, sam_parser=Parser(),
                            boto_session=boto3.session.Session(region_name=region))
    # An empty policy map keeps the translator offline (it would ask IAM for managed policies).
    return translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: {})


def local_code(resource: dict[str, Any]) -> tuple[str, str] | None:
    """(property, folder) of a function whose code is a local folder, which `sam package` zips
    and replaces by its S3 location: an AWS::Serverless::Function's CodeUri, an
    AWS::Lambda::Function's Code (the SAM CLI's packageable resources)."""
    prop = {"AWS::Serverless::Function": "CodeUri", "AWS::Lambda::Function": "Code"}.get(resource["Type"])
    value = resource.get("Properties", {}).get(prop) if prop else None
    return (prop, value) if isinstance(value, str) and not value.startswith("s3://") else None


def processed(template: Template, region: str) -> Template:
    """``template`` as CloudFormation processes it: every declared transform applied, in order.
    A local code folder (local_code) becomes the S3 location ``sam package`` would give it."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        local = local_code(resource)
        if local is not None:
            resource["Properties"][local[0]] = ("s3://artifacts/package.zip" if local[0] == "CodeUri"
                                                else {"S3Bucket": "artifacts", "S3Key": "package.zip"})
    for transform in declared_transforms(template):
        if transform != SAM:
            raise AssertionError(f"no offline version of the transform {transform}")
        template = sam_transform(template, region)
    template.pop("Transform", None)
    return template
