# The database rotation function (partials/database.yaml.j2, DatabaseRotationFunction): rotates
# both database secrets in the four steps Secrets Manager calls it with (Secrets Manager User
# Guide, "Rotation by Lambda function" and "Lambda rotation functions"), each step safe to run
# again:
#   createSecret  a new password (GetRandomPassword) in an AWSPENDING version, the AWSCURRENT
#                 keys copied; a secret with masterarn (alternating users) names the other user
#   setSecret     the pending password set in the database through the RDS Data API as the
#                 master user (the master secret's AWSCURRENT: the secret itself when it is the
#                 master's, else its masterarn); the clone <user>_clone made on first use and
#                 granted <user>; nothing when the pending password logs in already
#   testSecret    a login with the pending credentials (postgres_login.py: TLS, SCRAM or md5)
#   finishSecret  AWSCURRENT moved to the pending version (Secrets Manager moves AWSPREVIOUS)
# Packaged beside database_user.py (its SQL) and postgres_login.py; boto3 is in the runtime.
# Never logs a password.
import json
import os

import boto3
from database_user import CREATE_ROLE, SET_PASSWORD, run_statements
from postgres_login import LoginError, login

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
CLONE = "_clone"
GRANT_MEMBERSHIP = "SELECT format('GRANT %I TO %I', :base, :user)"
# The trust store of the Lambda runtime, which AWS's own PostgreSQL rotation functions verify
# RDS certificates with (aws-samples/aws-secrets-manager-rotation-lambdas, sslmode verify-full).
RUNTIME_CA_FILE = "/etc/pki/tls/cert.pem"


def alternate(user):
    """The other user of an alternating pair: <user> <-> <user>_clone."""
    if user.endswith(CLONE):
        return user[:-len(CLONE)]
    if len(user + CLONE) > 63:  # PostgreSQL's longest name
        raise ValueError(f"{user}{CLONE} would be longer than 63 characters")
    return user + CLONE


class Rotation:
    def __init__(self, secrets, rds_data, arn, token):
        self.secrets, self.rds_data, self.arn, self.token = secrets, rds_data, arn, token

    def value(self, stage, version=None):
        extra = {"VersionId": version} if version else {}
        found = self.secrets.get_secret_value(SecretId=self.arn, VersionStage=stage, **extra)
        return json.loads(found["SecretString"])

    def pending(self):
        return self.value(PENDING, self.token)


def log_in(secret):
    return login(secret["host"], int(secret["port"]), secret["username"], secret["password"],
                 secret["dbname"], cafile=os.environ.get("DATABASE_CA_FILE", RUNTIME_CA_FILE))


def create_secret(rotation):
    current = rotation.value(CURRENT)
    try:
        rotation.pending()
        print(f"createSecret: version {rotation.token} exists already")
        return
    except rotation.secrets.exceptions.ResourceNotFoundException:
        pass
    password = rotation.secrets.get_random_password(
        PasswordLength=32, ExcludeCharacters=os.environ["EXCLUDE_CHARACTERS"])["RandomPassword"]
    pending = current | {"password": password}
    if "masterarn" in current:
        pending["username"] = alternate(current["username"])
    rotation.secrets.put_secret_value(SecretId=rotation.arn, ClientRequestToken=rotation.token,
                                      SecretString=json.dumps(pending), VersionStages=[PENDING])
    print(f"createSecret: version {rotation.token} for {pending['username']}")


def set_secret(rotation):
    pending, current = rotation.pending(), rotation.value(CURRENT)
    try:
        log_in(pending)
        print(f"setSecret: {pending['username']} logs in with the pending password already")
        return
    except LoginError as exc:
        if not exc.refused:
            raise
    multi = "masterarn" in current
    expected = alternate(current["username"]) if multi else current["username"]
    if pending["username"] != expected:
        raise ValueError(f"the pending user is {pending['username']!r}, expected {expected!r}")
    statements = [CREATE_ROLE, SET_PASSWORD] if multi else [SET_PASSWORD]
    if multi and expected.endswith(CLONE):
        statements.append(GRANT_MEMBERSHIP)
    call = {"resourceArn": os.environ["CLUSTER_ARN"], "secretArn": current.get("masterarn", rotation.arn),
            "database": current["dbname"]}
    run_statements(rotation.rds_data, call, statements, {
        "user": expected, "password": pending["password"], "base": expected.removesuffix(CLONE)})
    print(f"setSecret: the password of {expected} is set")


def test_secret(rotation):
    pending = rotation.pending()
    how = log_in(pending)
    print(f"testSecret: {pending['username']} logs in with the pending password ({how})")


def finish_secret(rotation):
    stages = rotation.secrets.describe_secret(SecretId=rotation.arn)["VersionIdsToStages"]
    current = next(version for version, labels in stages.items() if CURRENT in labels)
    rotation.secrets.update_secret_version_stage(SecretId=rotation.arn, VersionStage=CURRENT,
                                                 MoveToVersionId=rotation.token, RemoveFromVersionId=current)
    print(f"finishSecret: version {rotation.token} is current")


STEPS = {"createSecret": create_secret, "setSecret": set_secret, "testSecret": test_secret,
         "finishSecret": finish_secret}


def staged_for_rotation(secrets, arn, token):
    """The token's staging labels, once it is known to be a version under rotation."""
    metadata = secrets.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"secret {arn} is not enabled for rotation")
    labels = metadata.get("VersionIdsToStages", {}).get(token)
    if labels is None or not {CURRENT, PENDING} & set(labels):
        raise ValueError(f"version {token} of secret {arn} is not staged for rotation")
    return labels


def handler(event, context, secrets=None, rds_data=None):
    step = event["Step"]
    if step not in STEPS:
        raise ValueError(f"Step: {step!r} is not a rotation step (allowed: {', '.join(STEPS)})")
    secrets = secrets or boto3.client("secretsmanager")
    labels = staged_for_rotation(secrets, event["SecretId"], event["ClientRequestToken"])
    if CURRENT in labels:
        print(f"{step}: version {event['ClientRequestToken']} is current already")
        return
    rotation = Rotation(secrets, rds_data or boto3.client("rds-data"), event["SecretId"],
                        event["ClientRequestToken"])
    STEPS[step](rotation)
