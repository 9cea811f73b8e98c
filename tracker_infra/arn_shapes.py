"""What a resource's ARN looks like, per CloudFormation type: the value its Ref or GetAtt ... Arn
returns, for tools that must put a plausible ARN where a template references one (the policy
linters in tests/test_aws_validators.py). Facts about AWS, each from the service's documentation
("Actions, resources, and condition keys for <service>" in the Service Authorization Reference,
ARN formats; the CloudFormation resource reference, return values):

- a Secrets Manager secret's ARN ends in a dash and six random characters; an
  AWS::SecretsManager::SecretTargetAttachment's Ref is its secret's ARN;
- a log group's GetAtt Arn ends in ":*";
- a CloudFront distribution's Ref is its ID, not an ARN; so is a subnet's, and a VPC security
  group's (GetAtt GroupId is the same ID).

A type the templates start referencing by ARN gets a line here, or the linters' test says which
is missing.
"""

from __future__ import annotations

SECRET_ARN = "arn:aws:secretsmanager:{region}:{account}:secret:{id}-AbCdEf"  # noqa: S105 - a format
ARN_SHAPES = {
    "AWS::SecretsManager::Secret": SECRET_ARN,
    "AWS::SecretsManager::SecretTargetAttachment": SECRET_ARN,
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{id}:*",
    "AWS::ECR::Repository": "arn:aws:ecr:{region}:{account}:repository/{id}",
    "AWS::S3::Bucket": "arn:aws:s3:::{id}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{id}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{id}",
    "AWS::CloudFront::Distribution": "EDFDVBD6EXAMPLE",
    "AWS::EC2::Subnet": "subnet-0123456789abcdef0",
    "AWS::EC2::SecurityGroup": "sg-0123456789abcdef0",
    "AWS::RDS::DBCluster": "arn:aws:rds:{region}:{account}:cluster:{id}",
}


def arn_of(resource_type: str, region: str, account: str, name: str) -> str:
    """A plausible ARN (or Ref value) of a resource of this type; KeyError for a type not listed."""
    return ARN_SHAPES[resource_type].format(region=region, account=account, id=name)
