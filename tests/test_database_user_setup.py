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
SUCCESS or FAILED with the reason; a transient Data API error (resuming, throttled, unavailable, no
answer) is retried with waits until the setup succeeds, or until too little time is left and then
FAILED names it while a Data API call and the response still fit in the time left; any other error
fails at once without a retry. (The rotation's clone, made on what this function made:
tests/test_database_rotation.py.) Lambda's context and the function's sleep are one fake clock: a
wait takes the function's time (its Timeout in the template) at once. Does not prove: the Data API
itself (its endpoint, IAM, the cluster's HTTP endpoint), Aurora's own roles (rds_superuser).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.helpers import config, render
from tests.local_postgres import (
    CLUSTER,
    DATABASE,
    MASTER,
    MASTER_PASSWORD,
    DataApi,
    SecretsManager,
    Server,
    client_error,
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


def function_timeout_ms() -> int:
    return render(config("staging"))["Resources"]["DatabaseUserFunction"]["Properties"]["Timeout"] * 1000


@dataclass
class Clock:
    """Lambda's context (get_remaining_time_in_millis) and the function's sleep: a wait takes the
    function's time at once instead of passing."""

    remaining_ms: float = field(default_factory=function_timeout_ms)
    waits: list[float] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_ms)

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.waits.append(seconds)
        self.remaining_ms -= seconds * 1000


@dataclass
class Flaky:
    """The Data API stand-in, failing the calls numbered in ``failing`` (1, 2, ...) with ``error``;
    records the function's time left at each call."""

    error: Exception
    failing: range
    clock: Clock
    api: DataApi | None = None
    calls: list[int] = field(default_factory=list)

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        assert self.api is not None
        self.calls.append(self.clock.get_remaining_time_in_millis())
        if len(self.calls) in self.failing:
            raise self.error
        return self.api.execute_statement(**kwargs)


def run_setup(server: Server, user: str, password: str, master_password: str = MASTER_PASSWORD,
              event: dict[str, Any] | None = None, flaky: Flaky | None = None,
              clock: Clock | None = None) -> Any:
    secrets = SecretsManager()
    secrets.create(APP_SECRET, json.dumps({"username": user, "password": password}))
    secrets.create(MASTER_SECRET, json.dumps({"username": MASTER, "password": master_password}))
    env = {"CLUSTER_ARN": CLUSTER, "MASTER_SECRET_ARN": MASTER_SECRET, "APP_SECRET_ARN": APP_SECRET,
           "DATABASE": DATABASE}
    clock = flaky.clock if flaky else clock or Clock()
    api: DataApi | Flaky = DataApi(server, secrets)
    if flaky:
        flaky.api, api = api, flaky
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return function_module().handler(event or {}, clock, api, secrets, sleep=clock.sleep)


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
    with pytest.raises(ClientError, match="password authentication failed"):  # a direct call raises
        run_setup(server, "someone", "x", master_password="wrong")


# What the Data API answers while it cannot run the statement now (partials/database_user.py
# names the documentation of each).
TRANSIENT = {
    "resuming": client_error("DatabaseResumingException", 400, "The database is resuming"),
    "throttled": client_error("ThrottlingException", 400, "Rate exceeded"),
    "service unavailable": client_error("ServiceUnavailableError", 503, ""),
    "writer unavailable": client_error("DatabaseUnavailableException", 504, ""),
    "internal error": client_error("InternalServerErrorException", 500, ""),
    "no answer": EndpointConnectionError(endpoint_url="https://rds-data.us-east-1.amazonaws.com/Execute"),
}
# Errors that another try would not mend.
FINAL = {
    "SQL error": client_error("DatabaseErrorException", 400, 'ERROR: syntax error at or near "x"'),
    "statement timeout": client_error("StatementTimeoutException", 400, "Statement timed out"),
    "endpoint not enabled": client_error("HttpEndpointNotEnabledException", 400, "HttpEndpoint not enabled"),
    "access denied": client_error("AccessDeniedException", 403, "not authorized"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", TRANSIENT)
def test_transient_errors_are_retried_until_the_user_is_made(server: Server, kind: str) -> None:
    """The third call fails, after the user was created, and the two after it: the setup starts
    again from the top each time."""
    user, password = f"api_retry_{kind.replace(' ', '_')}", "retry-Pa$$"
    flaky = Flaky(TRANSIENT[kind], range(3, 6), Clock())
    with response_url() as (url, received):
        run_setup(server, user, password, event=event(url, "Create"), flaky=flaky)
    (answer,) = received
    assert (answer["Status"], answer["Data"]) == ("SUCCESS", {"Username": user}), answer["Reason"]
    assert len(flaky.clock.waits) == 3
    assert server.sql(user, password, "SELECT current_user").stdout.strip() == user


@pytest.mark.parametrize("kind", FINAL)
def test_any_other_error_fails_at_once_without_a_retry(server: Server, kind: str) -> None:
    flaky = Flaky(FINAL[kind], range(1, 2), Clock())
    with response_url() as (url, received):
        run_setup(server, "api_final", "x", event=event(url, "Create"), flaky=flaky)
    (answer,) = received
    assert answer["Status"] == "FAILED"
    assert str(FINAL[kind]) in answer["Reason"]  # its code and message
    assert (len(flaky.calls), flaky.clock.waits) == (1, [])


@pytest.mark.parametrize("kind", ["resuming", "no answer"])
def test_transient_errors_until_the_deadline_fail_naming_the_error_in_time(server: Server, kind: str) -> None:
    """A Data API call may take 45 s (Aurora User Guide, "Using RDS Data API"; the function reads
    for 5 + 50 s) and the response 30 s (its timeout): the last try starts with both left."""
    flaky = Flaky(TRANSIENT[kind], range(1, 10_000), Clock())
    with response_url() as (url, received):
        run_setup(server, "api_deadline", "x", event=event(url, "Create"), flaky=flaky)
    (answer,) = received
    assert answer["Status"] == "FAILED"
    assert str(TRANSIENT[kind]) in answer["Reason"]
    assert min(flaky.calls) >= (5 + 50 + 30) * 1000
    # it kept trying for most of its time, waiting longer as it went, each wait at most 20 s
    assert function_timeout_ms() - flaky.clock.remaining_ms > 0.6 * function_timeout_ms()
    assert len(flaky.calls) == len(flaky.clock.waits) + 1 > 10
    assert max(flaky.clock.waits) <= 20 and max(flaky.clock.waits[:3]) <= 4


def test_a_direct_call_retries_too_and_raises_the_last_error(server: Server) -> None:
    flaky = Flaky(TRANSIENT["throttled"], range(1, 10_000), Clock())
    with pytest.raises(ClientError, match="ThrottlingException"):
        run_setup(server, "api_direct", "x", flaky=flaky)
    assert len(flaky.clock.waits) > 10
