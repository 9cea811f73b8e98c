"""The database user function (partials/database_user.py, inline in DatabaseUserFunction), run for
real against a local PostgreSQL server.

The function's code is read from the rendered template (the ZipFile CloudFormation deploys) and
its handler called with the stand-ins of tests/local_postgres.py: Secrets Manager holding the two
secrets, and the RDS Data API's ExecuteStatement running its SQL as the master user through psql.
A custom resource event's response goes to a local HTTP server, as CloudFormation's presigned URL
would receive it. The server is Debian's PostgreSQL (tests/local_postgres.py says how it is made).

Proves: the function creates the API's user, who can log in with the secret's password and create
tables in schema public but cannot create roles or databases and is no member of the master user;
a second run (after a restore, or a password change) resets the password and changes nothing
else; a password with the characters the secret may hold is quoted safely; CloudFormation is told
SUCCESS or FAILED with the reason. (The rotation's clone, made on what this function made:
tests/test_database_rotation.py.) Does not prove: the Data API itself (its endpoint, IAM, the
cluster's HTTP endpoint), Aurora's own roles (rds_superuser).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import config, render
from tests.local_postgres import (
    CLUSTER,
    DATABASE,
    MASTER,
    MASTER_PASSWORD,
    DataApi,
    SecretsManager,
    Server,
    needs_postgres,
    running_server,
)

pytestmark = needs_postgres


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server() as running:
        yield running


APP_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:app"
MASTER_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:master"


def function_module() -> Any:
    """The function's code as deployed: the rendered staging template's ZipFile."""
    code = render(config("staging"))["Resources"]["DatabaseUserFunction"]["Properties"]["Code"]["ZipFile"]
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)  # noqa: S102 - our own rendered code
    return module


def run_setup(server: Server, user: str, password: str, master_password: str = MASTER_PASSWORD,
              event: dict[str, Any] | None = None) -> Any:
    secrets = SecretsManager()
    secrets.create(APP_SECRET, json.dumps({"username": user, "password": password}))
    secrets.create(MASTER_SECRET, json.dumps({"username": MASTER, "password": master_password}))
    env = {"CLUSTER_ARN": CLUSTER, "MASTER_SECRET_ARN": MASTER_SECRET, "APP_SECRET_ARN": APP_SECRET,
           "DATABASE": DATABASE}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return function_module().handler(event or {}, None, DataApi(server, secrets), secrets)


@contextlib.contextmanager
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local stand-in for CloudFormation's presigned response URL: the bodies PUT to it."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/response", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def event(url: str, request: str) -> dict[str, Any]:
    return {"RequestType": request, "ResponseURL": url, "StackId": "stack", "RequestId": "r1",
            "LogicalResourceId": "DatabaseUser", "ResourceProperties": {}}


@pytest.mark.slow
def test_the_setup_creates_a_least_privilege_user_who_can_log_in(server: Server) -> None:
    user = config("staging").database.app_username
    password = "first-Pa$$w0rd;%{x}'\\"
    assert run_setup(server, user, password) == {"username": user}
    assert server.sql(user, password, "SELECT current_user").stdout.strip() == user
    server.sql(user, password, "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    assert server.sql(user, password, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                      "WHERE rolname = current_user").stdout.strip() == "f"
    assert server.sql(user, password, f"SELECT pg_has_role('{MASTER}', 'MEMBER')").stdout.strip() == "f"
    denied = server.sql(user, password, "CREATE ROLE intruder", check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    # the master user's password does not work for it
    assert server.sql(user, MASTER_PASSWORD, "SELECT 1", check=False).returncode != 0


@pytest.mark.slow
def test_a_second_run_resets_the_password_and_keeps_the_data(server: Server) -> None:
    user = config("staging").database.app_username
    run_setup(server, user, "first-Pa$$w0rd")
    server.sql(user, "first-Pa$$w0rd", "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    server.sql(user, "first-Pa$$w0rd", "INSERT INTO activities VALUES (1) ON CONFLICT DO NOTHING")
    run_setup(server, user, "second-Pa$$w0rd")
    assert server.sql(user, "first-Pa$$w0rd", "SELECT 1", check=False).returncode != 0
    assert server.sql(user, "second-Pa$$w0rd", "SELECT count(*) FROM activities").stdout.strip() == "1"


@pytest.mark.slow
def test_cloudformation_is_told_success_and_the_user(server: Server) -> None:
    user = config("staging").database.app_username
    with response_url() as (url, received):
        run_setup(server, user, "cfn-Pa$$", event=event(url, "Create"))
        run_setup(server, user, "cfn-Pa$$", event=event(url, "Delete"))
    (created, deleted) = received
    assert (created["Status"], created["Data"], created["LogicalResourceId"]) == (
        "SUCCESS", {"Username": user}, "DatabaseUser")
    assert created["PhysicalResourceId"] == f"database-user-{user}"
    assert deleted["Status"] == "SUCCESS"  # the user stays with the cluster's data
    assert server.sql(user, "cfn-Pa$$", "SELECT 1").stdout.strip() == "1"


@pytest.mark.slow
def test_a_wrong_master_password_fails_the_resource_with_the_reason(server: Server) -> None:
    with response_url() as (url, received):
        run_setup(server, "someone", "x", master_password="wrong", event=event(url, "Create"))
    (failed,) = received
    assert failed["Status"] == "FAILED"
    assert "password authentication failed" in failed["Reason"]
    with pytest.raises(RuntimeError, match="password authentication failed"):  # a direct call raises
        run_setup(server, "someone", "x", master_password="wrong")
