# The database user function (partials/database.yaml.j2, DatabaseUserFunction): makes the API's
# database user through the RDS Data API as the master user, so it exists before its rotation is
# tested. Inline in the template (ZipFile, under 4,096 bytes); boto3 comes with the runtime.
# Idempotent: creates the user when missing, then sets its LOGIN and the password of
# ApiDatabaseSecret's AWSCURRENT version and its grants. Called by CloudFormation (the custom
# resource DatabaseUser) or directly after a restore (output DatabaseUserSetupCommand).
import json
import os
import urllib.request

import boto3

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
    secret = json.loads(secrets.get_secret_value(SecretId=os.environ["APP_SECRET_ARN"])["SecretString"])
    call = {"resourceArn": os.environ["CLUSTER_ARN"], "secretArn": os.environ["MASTER_SECRET_ARN"],
            "database": os.environ["DATABASE"]}
    run_statements(rds_data, call, STATEMENTS, {"user": secret["username"], "password": secret["password"]})
    return secret["username"]


def respond(event, status, reason, user=""):
    body = json.dumps({"Status": status, "Reason": reason[:3000], "PhysicalResourceId":
                       event.get("PhysicalResourceId") or f"database-user-{user or 'none'}",
                       "StackId": event["StackId"], "RequestId": event["RequestId"],
                       "LogicalResourceId": event["LogicalResourceId"], "Data": {"Username": user}})
    request = urllib.request.Request(event["ResponseURL"], data=body.encode(), method="PUT",  # noqa: S310
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - CloudFormation's URL


def handler(event, context, rds_data=None, secrets=None):
    rds_data = rds_data or boto3.client("rds-data")
    secrets = secrets or boto3.client("secretsmanager")
    if "ResponseURL" not in event:  # a direct invocation
        return {"username": setup(rds_data, secrets)}
    if event["RequestType"] == "Delete":  # the user goes with the cluster, or stays with its data
        return respond(event, "SUCCESS", "nothing to delete")
    try:
        user = setup(rds_data, secrets)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to CloudFormation
        print(f"database user setup failed: {exc!r}")
        return respond(event, "FAILED", f"database user setup failed: {exc}")
    print(f"database user {user} is ready")
    return respond(event, "SUCCESS", f"database user {user} is ready", user)
