"""The transforms CloudFormation runs on a template before it creates resources, run offline.

- ``AWS::Serverless-2016-10-31``: samtranslator, the library behind CloudFormation's own SAM
  transform (the edge function becomes a function, a role and a version).
- ``AWS::SecretsManager-2024-09-16``: only AWS runs it. Here it is reproduced in the shape AWS
  documents for its processed template: each ``RotationSchedule`` with ``HostedRotationLambda``
  gets a nested stack (``AWS::CloudFormation::Stack``) holding the rotation function, and reads
  the function's ARN from that stack's output instead. The nested stack's own template comes
  from AWS's rotation function repository and is not checked here.
"""

from __future__ import annotations

import copy
from typing import Any

Template = dict[str, Any]
SAM = "AWS::Serverless-2016-10-31"
SECRETS_MANAGER = ("AWS::SecretsManager-2020-07-23", "AWS::SecretsManager-2024-09-16")


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


def secrets_manager_transform(template: Template) -> Template:
    """Each hosted rotation becomes a nested stack whose output is the rotation function."""
    template = copy.deepcopy(template)
    resources = template["Resources"]
    for logical_id, resource in list(resources.items()):
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::SecretsManager::RotationSchedule" or "HostedRotationLambda" not in props:
            continue
        hosted = props.pop("HostedRotationLambda")
        stack_id = f"{logical_id}Lambda"
        resources[stack_id] = {"Type": "AWS::CloudFormation::Stack", "Properties": {
            "TemplateURL": f"https://secretsmanager-rotation.example/{hosted['RotationType']}.json",
            "Parameters": {k: v for k, v in hosted.items() if k != "RotationType"}}}
        props["RotationLambdaARN"] = {"Fn::GetAtt": [stack_id, "Outputs.RotationLambdaARN"]}
    return template


def processed(template: Template, region: str) -> Template:
    """``template`` as CloudFormation processes it: every declared transform applied, in order.
    A local CodeUri becomes the S3 location ``sam package`` would give it."""
    template = copy.deepcopy(template)
    for transform in declared_transforms(template):
        if transform == SAM:
            for resource in template["Resources"].values():
                if resource["Type"] == "AWS::Serverless::Function" and isinstance(
                        resource["Properties"].get("CodeUri"), str):
                    resource["Properties"]["CodeUri"] = "s3://artifacts/package.zip"
            template = sam_transform(template, region)
        elif transform in SECRETS_MANAGER:
            template = secrets_manager_transform(template)
        else:
            raise AssertionError(f"no offline version of the transform {transform}")
    template.pop("Transform", None)
    return template
