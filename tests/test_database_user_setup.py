"""The database user function (partials/database_user.py, inline in DatabaseUserFunction), run for
real against a local PostgreSQL server.

The function's code is read from the rendered template (the ZipFile CloudFormation deploys) and
its handler called with two stand-ins: Secrets Manager answers with the secrets' values, and the
RDS Data API's ExecuteStatement runs its SQL as the master user through psql, binding the named
parameters (``:name``) as psql variables quoted as literals (``:'name'``), which is what the Data
API's typed parameters are to PostgreSQL. A custom resource event's response goes to a local HTTP
server, as CloudFormation's presigned URL would receive it. The server is Debian's PostgreSQL (15
here; Aurora runs the engine version in vars), started in a temporary folder on a free localhost
port. The master user is made like Aurora's: CREATEROLE and CREATEDB, owner of the database, not a
superuser.

Proves: the function creates the API's user, who can log in with the secret's password and create
tables in schema public but cannot create roles or databases and is no member of the master user;
a second run (after a restore, or a password change) resets the password and changes nothing
else; a password with the characters the secret may hold is quoted safely; the clone the
alternating-users rotation makes works on what the function made; CloudFormation is told SUCCESS
or FAILED with the reason. Does not prove: the Data API itself (its endpoint, IAM, the cluster's
HTTP endpoint), Aurora's own roles (rds_superuser), TLS.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, render
from tracker_infra.rehearsal.server import free_port

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists()), None)
MASTER, MASTER_PASSWORD, DATABASE = "tracker_admin", "master-Secret-1", "tracker"

pytestmark = pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries are not installed "
                                "(.ci/run installs Debian's postgresql)")


@dataclass
class Server:
    port: int
    bin: Path

    def env(self, user: str, password: str, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "PGHOST": "127.0.0.1",
                "PGPORT": str(self.port), "PGDATABASE": DATABASE, "PGUSER": user,
                "PGPASSWORD": password, "PGSSLMODE": "disable"} | extra

    def sql(self, user: str, password: str, query: str, check: bool = True,
            database: str = DATABASE) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "psql"), "-v", "ON_ERROR_STOP=1", "-tAc", query],
                              env=self.env(user, password, PGDATABASE=database), capture_output=True,
                              text=True, check=check, timeout=30)


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    assert PG_BIN is not None
    # Not under pytest's temporary folder: as root that is private to root, and the server runs
    # as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
    data, pwfile = base / "data", base / "pw"
    pwfile.write_text("postgres-Secret-1\n")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=scram-sha-256", f"--pwfile={pwfile}"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                                 "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=60)
    running = Server(port, PG_BIN)
    try:
        for query in (f"CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB PASSWORD '{MASTER_PASSWORD}'",
                      f"CREATE DATABASE {DATABASE} OWNER {MASTER}"):
            running.sql("postgres", "postgres-Secret-1", query, database="postgres")
        # As on Aurora: schema public belongs to the master user (its database's owner).
        running.sql("postgres", "postgres-Secret-1", f"ALTER SCHEMA public OWNER TO {MASTER}")
        yield running
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


APP_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:app"
MASTER_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:master"
CLUSTER = "arn:aws:rds:us-east-1:1:cluster:tracker-staging"


def function_module() -> Any:
    """The function's code as deployed: the rendered staging template's ZipFile."""
    code = render(config("staging"))["Resources"]["DatabaseUserFunction"]["Properties"]["Code"]["ZipFile"]
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)  # noqa: S102 - our own rendered code
    return module


class Secrets:
    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - boto3's name
        return {"SecretString": json.dumps(self.values[SecretId])}


@dataclass
class DataApi:
    """ExecuteStatement as the master user of the secret it is given, through psql."""

    server: Server
    secrets: Secrets

    def execute_statement(self, sql: str, resourceArn: str, secretArn: str, database: str,  # noqa: N803
                          parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        assert resourceArn == CLUSTER and database == DATABASE
        master = self.secrets.values[secretArn]
        args = [str(self.server.bin / "psql"), "-v", "ON_ERROR_STOP=1", "-tA"]
        for p in parameters or []:
            args += ["-v", f"{p['name']}={p['value']['stringValue']}"]
            sql = re.sub(rf":{p['name']}\b", f":'{p['name']}'", sql)
        done = subprocess.run(args, input=sql, env=self.server.env(master["username"], master["password"]),
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"BadRequestException: {done.stderr.strip()}")
        return {"records": [[{"stringValue": line}] for line in done.stdout.splitlines() if line]}


def run_setup(server: Server, user: str, password: str, master_password: str = MASTER_PASSWORD,
              event: dict[str, Any] | None = None) -> Any:
    secrets = Secrets({APP_SECRET: {"username": user, "password": password},
                       MASTER_SECRET: {"username": MASTER, "password": master_password}})
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
def test_the_rotations_clone_works_on_what_the_setup_made(server: Server) -> None:
    """What the alternating-users rotation does as the master user on its first run."""
    user = config("staging").database.app_username
    run_setup(server, user, "current-Pa$$")
    server.sql(user, "current-Pa$$", "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    server.sql(MASTER, MASTER_PASSWORD, f"DROP ROLE IF EXISTS {user}_clone")
    server.sql(MASTER, MASTER_PASSWORD, f"CREATE ROLE {user}_clone WITH LOGIN PASSWORD 'clone-Pa$$'")
    server.sql(MASTER, MASTER_PASSWORD, f"GRANT {user} TO {user}_clone")
    assert server.sql(f"{user}_clone", "clone-Pa$$", "SELECT count(*) FROM activities").returncode == 0
    # the previous credentials still work: a running task is not cut off
    assert server.sql(user, "current-Pa$$", "SELECT 1").stdout.strip() == "1"


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
