# The database user function (partials/database.yaml.j2, DatabaseUserFunction): makes the API's
# database user through the RDS Data API as the master user, so it exists before its rotation is
# tested. Inline in the template (ZipFile, under 4,096 characters once inline_code has dropped the
# comments); boto3 comes with the runtime.
# Idempotent: creates the user when missing, then sets its LOGIN and the password of
# ApiDatabaseSecret's AWSCURRENT version and its grants. Called by CloudFormation (the custom
# resource DatabaseUser) or directly after a restore (output DatabaseUserSetupCommand).
# A transient error (transient()) runs the whole setup again after a wait, while the function has
# time left to answer; any other error, or the last one, fails it (FAILED to CloudFormation).
import itertools
import json
import os
import random
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Shared with the rotation function (partials/database_rotation.py), which imports this file.
CREATE_ROLE = ("SELECT format('CREATE ROLE %I LOGIN', :user) WHERE NOT EXISTS "
               "(SELECT 1 FROM pg_roles WHERE rolname = :user)")
SET_PASSWORD = "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :user, :password)"  # noqa: S105 - SQL
STATEMENTS = (
    CREATE_ROLE,
    SET_PASSWORD,
    "SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :user)",
    "SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', :user)",
)
# A Data API call ends within 45 s (Aurora User Guide, "Using RDS Data API"): its answer is read
# for 50 s at most, and botocore tries it once (retried() does the retrying, so one call cannot
# outlast the function). A new try needs that call's 55 s and the response's 30 s left (RESERVE).
DATA_API = Config(connect_timeout=5, read_timeout=50, retries={"total_max_attempts": 1})
RESERVE = 85


def run_statements(rds_data, call, statements, values):
    """Each statement builds the SQL to run (format %I/%L quote names and the password); the
    SQL it returns, if any, is then run. call: the Data API's cluster, secret and database."""
    for statement in statements:
        names = [n for n in values if f":{n}" in statement]
        built = rds_data.execute_statement(sql=statement, **call, parameters=[
            {"name": n, "value": {"stringValue": values[n]}} for n in names])
        for row in built.get("records", []):
            rds_data.execute_statement(sql=row[0]["stringValue"], **call)


def setup(rds_data, secrets):
    # All of it can run again (a retry starts from the top).
    secret = json.loads(secrets.get_secret_value(SecretId=os.environ["APP_SECRET_ARN"])["SecretString"])
    call = {"resourceArn": os.environ["CLUSTER_ARN"], "secretArn": os.environ["MASTER_SECRET_ARN"],
            "database": os.environ["DATABASE"]}
    run_statements(rds_data, call, STATEMENTS, {"user": secret["username"], "password": secret["password"]})
    return secret["username"]


def transient(exc):
    # Worth another try:
    # - DatabaseResumingException: the paused Serverless v2 writer is resuming, "wait a few seconds
    #   and try again" (RDS Data API Reference, Errors);
    # - throttling codes, HTTP 429/500/502/503/504 (e.g. ServiceUnavailableError 503,
    #   DatabaseUnavailableException 504 "the writer instance isn't available",
    #   InternalServerErrorException 500), and no answer at all (a BotoCoreError: connection
    #   refused or closed, timeout): what the AWS SDKs retry (Boto3 Guide, "Retries").
    # Not retried: SQL errors (DatabaseErrorException, BadRequestException), a statement's own
    # StatementTimeoutException, HttpEndpointNotEnabledException (the troubleshooting guide names
    # only configuration causes), access and secret errors.
    if not isinstance(exc, ClientError):
        return True
    code, meta = exc.response["Error"].get("Code", ""), exc.response.get("ResponseMetadata", {})
    return code == "DatabaseResumingException" or "Throttl" in code or meta.get(
        "HTTPStatusCode") in (429, 500, 502, 503, 504)


def retried(attempt, context, sleep):
    # attempt() until it succeeds, waiting after each transient error with full jitter, capped at
    # 20 s ("Exponential Backoff And Jitter", AWS Architecture Blog); its error when it is not
    # transient or the wait would leave less than RESERVE of the function's time.
    for n in itertools.count():
        try:
            return attempt()
        except (BotoCoreError, ClientError) as exc:
            delay = random.uniform(0, min(20, 2**n))  # noqa: S311 - a wait, not a secret
            if not transient(exc) or context.get_remaining_time_in_millis() / 1000 - delay < RESERVE:
                raise
            print(f"try {n + 1}: {exc!r}; again in {delay:.1f} s")
            sleep(delay)


def respond(event, status, reason, user=""):
    body = json.dumps({"Status": status, "Reason": reason[:3000], "PhysicalResourceId":
                       event.get("PhysicalResourceId") or f"database-user-{user or 'none'}",
                       "StackId": event["StackId"], "RequestId": event["RequestId"],
                       "LogicalResourceId": event["LogicalResourceId"], "Data": {"Username": user}})
    request = urllib.request.Request(event["ResponseURL"], data=body.encode(), method="PUT",  # noqa: S310
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - CloudFormation's URL


def handler(event, context, rds_data=None, secrets=None, sleep=time.sleep):
    rds_data = rds_data or boto3.client("rds-data", config=DATA_API)
    secrets = secrets or boto3.client("secretsmanager")

    def setup_user():
        return retried(lambda: setup(rds_data, secrets), context, sleep)

    if "ResponseURL" not in event:  # a direct invocation
        return {"username": setup_user()}
    if event["RequestType"] == "Delete":  # the user goes with the cluster, or stays with its data
        return respond(event, "SUCCESS", "nothing to delete")
    try:
        user = setup_user()
    except Exception as exc:  # noqa: BLE001 - every failure is reported to CloudFormation
        print(f"database user setup failed: {exc!r}")
        return respond(event, "FAILED", f"database user setup failed: {exc}")
    print(f"database user {user} is ready")
    return respond(event, "SUCCESS", f"database user {user} is ready", user)
