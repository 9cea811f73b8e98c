"""The database rotation function (partials/database_rotation.py, with database_user.py's SQL and
postgres_login.py), run for real against a local PostgreSQL server.

The function is loaded from its code package as the renderer lays it out and its handler called
step by step, as Secrets Manager calls it during a rotation, with the stand-ins of
tests/local_postgres.py: Secrets Manager keeping versions and staging labels, and the RDS Data
API running SQL as the user of the secret it is given. testSecret logs in over TLS to the local
server (certificate from a throwaway CA, named by DATABASE_CA_FILE instead of the runtime's
trust store).

Proves: a single-user rotation changes the master user's password, the new one logs in and the
old one does not, and the Data API keeps working with the master secret; an alternating-users
rotation makes the clone on the first rotation (a member of the API's user, so it reads the
API's tables) and makes the API's user current again on the second, each user logging in with
its own version's password while the other version still works; a step run again changes
nothing; testSecret fails on a wrong password; the login client speaks SCRAM-SHA-256 and md5 over
verified TLS and refuses a wrong password and a wrong host name. Does not prove: the Data API and
Secrets Manager themselves, that the Lambda runtime's trust store holds the RDS CAs, Aurora's own
roles.
"""

from __future__ import annotations

import importlib
import json
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, render
from tests.local_postgres import (
    CLUSTER,
    CURRENT,
    DATABASE,
    MASTER,
    MASTER_PASSWORD,
    PENDING,
    PG_BIN,
    PREVIOUS,
    DataApi,
    SecretsManager,
    Server,
    running_server,
)
from tracker_infra.rendering import ROOT, ROTATION_PACKAGE

MASTER_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:master"
APP_SECRET = "arn:aws:secretsmanager:us-east-1:1:secret:app"
PACKAGE = ROOT / "rendered" / "staging" / ROTATION_PACKAGE  # the folder sam deploy zips
MODULES = ("database_rotation", "database_user", "postgres_login")


def load(package: Path) -> Any:
    """The rotation function's module, imported from its package folder."""
    for name in MODULES:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(package))
    try:
        return importlib.import_module("database_rotation")
    finally:
        sys.path.remove(str(package))
        for name in MODULES:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def function() -> Any:
    return load(PACKAGE)


def test_an_unknown_step_is_refused_by_name(function: Any) -> None:
    with pytest.raises(ValueError, match="Step: 'rotate' is not a rotation step"):
        function.handler({"Step": "rotate", "SecretId": "s", "ClientRequestToken": "t"}, None)


def test_a_version_not_under_rotation_is_refused(function: Any) -> None:
    secrets = SecretsManager()
    secrets.create(APP_SECRET, "{}")
    with pytest.raises(ValueError, match="is not staged for rotation"):
        function.handler({"Step": "createSecret", "SecretId": APP_SECRET, "ClientRequestToken": "other"},
                         None, secrets, object())


def test_the_alternate_users_name(function: Any) -> None:
    assert function.alternate("tracker_app") == "tracker_app_clone"
    assert function.alternate("tracker_app_clone") == "tracker_app"
    with pytest.raises(ValueError, match="longer than 63"):
        function.alternate("u" * 58)


# --- against PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs Debian's postgresql)")
    with running_server() as running:
        yield running


@dataclass
class Account:
    """The stand-ins and the function, for one test."""

    server: Server
    function: Any
    secrets: SecretsManager

    def rotate(self, arn: str, steps: tuple[str, ...] = ("createSecret", "setSecret", "testSecret",
                                                         "finishSecret")) -> str:
        token = self.secrets.start_rotation(arn)
        for step in steps:
            self.step(arn, token, step)
        return token

    def step(self, arn: str, token: str, step: str) -> None:
        event = {"Step": step, "SecretId": arn, "ClientRequestToken": token}
        self.function.handler(event, None, self.secrets, DataApi(self.server, self.secrets))

    def value(self, arn: str, label: str) -> dict[str, Any]:
        return json.loads(self.secrets.labelled(arn, label))


def connection(server: Server) -> dict[str, Any]:
    """The keys SecretTargetAttachment adds to a secret (host, port, engine, dbClusterIdentifier)."""
    return {"engine": "postgres", "host": "localhost", "port": server.port, "dbname": DATABASE,
            "dbClusterIdentifier": "tracker-staging"}


@pytest.fixture
def account(server: Server, function: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    template = render(config("staging"))["Resources"]
    exclude = template["DatabaseSecret"]["Properties"]["GenerateSecretString"]["ExcludeCharacters"]
    for key, value in {"CLUSTER_ARN": CLUSTER, "EXCLUDE_CHARACTERS": exclude,
                       "DATABASE_CA_FILE": str(server.ca)}.items():
        monkeypatch.setenv(key, value)
    secrets = SecretsManager()
    secrets.create(MASTER_SECRET, json.dumps(connection(server) | {"username": MASTER,
                                                                   "password": MASTER_PASSWORD}))
    yield Account(server, function, secrets)
    # the master user's password as the next test expects it
    server.as_superuser(f"ALTER ROLE {MASTER} PASSWORD '{MASTER_PASSWORD}'")


def api_user(account: Account, user: str, password: str) -> None:
    """The API's user and its secret, as DatabaseUser makes them (the database user function's
    SQL, through the Data API), and a table it owns."""
    account.secrets.create(APP_SECRET, json.dumps(connection(account.server) | {
        "username": user, "password": password, "masterarn": MASTER_SECRET}))
    call = {"resourceArn": CLUSTER, "secretArn": MASTER_SECRET, "database": DATABASE}
    database_user = load_database_user()
    database_user.run_statements(DataApi(account.server, account.secrets), call, database_user.STATEMENTS,
                                 {"user": user, "password": password})
    account.server.sql(user, password, "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    account.server.sql(user, password, "INSERT INTO activities VALUES (1) ON CONFLICT DO NOTHING")


def load_database_user() -> Any:
    sys.path.insert(0, str(PACKAGE))
    try:
        return importlib.import_module("database_user")
    finally:
        sys.path.remove(str(PACKAGE))
        sys.modules.pop("database_user", None)


@pytest.mark.slow
def test_a_single_user_rotation_changes_the_master_password(account: Account) -> None:
    account.rotate(MASTER_SECRET)
    new, old = account.value(MASTER_SECRET, CURRENT), account.value(MASTER_SECRET, PREVIOUS)
    assert (new["username"], old["password"]) == (MASTER, MASTER_PASSWORD)
    assert new["password"] != MASTER_PASSWORD and len(new["password"]) == 32
    assert new | {"password": MASTER_PASSWORD} == old  # every other key as it was
    assert account.server.logs_in(MASTER, new["password"])
    assert not account.server.logs_in(MASTER, MASTER_PASSWORD)
    # the Data API reads the master secret's AWSCURRENT: it keeps working
    done = DataApi(account.server, account.secrets).execute_statement(
        "SELECT current_user", CLUSTER, MASTER_SECRET, DATABASE)
    assert done["records"] == [[{"stringValue": MASTER}]]


@pytest.mark.slow
def test_alternating_rotations_make_the_clone_then_the_user_current_again(account: Account) -> None:
    user = config("staging").database.app_username
    api_user(account, user, "first-Pa$$w0rd")
    account.rotate(APP_SECRET)
    clone = account.value(APP_SECRET, CURRENT)
    assert clone["username"] == f"{user}_clone" and clone["masterarn"] == MASTER_SECRET
    assert account.server.sql(clone["username"], clone["password"],
                              "SELECT count(*) FROM activities").stdout.strip() == "1"
    assert account.server.logs_in(user, "first-Pa$$w0rd")  # a running task is not cut off
    account.rotate(APP_SECRET)
    again, previous = account.value(APP_SECRET, CURRENT), account.value(APP_SECRET, PREVIOUS)
    assert (again["username"], previous) == (user, clone)
    assert again["password"] not in ("first-Pa$$w0rd", clone["password"])
    assert account.server.logs_in(user, again["password"])
    assert account.server.logs_in(clone["username"], clone["password"])
    assert not account.server.logs_in(user, "first-Pa$$w0rd")
    reads = account.server.sql(user, again["password"], "SELECT count(*) FROM activities")
    assert reads.stdout.strip() == "1"


@pytest.mark.slow
def test_each_step_run_again_changes_nothing(account: Account) -> None:
    token = account.secrets.start_rotation(MASTER_SECRET)
    for step in ("createSecret", "createSecret", "setSecret", "setSecret", "testSecret",
                 "finishSecret", "finishSecret"):
        account.step(MASTER_SECRET, token, step)
    stages = account.secrets.describe_secret(MASTER_SECRET)["VersionIdsToStages"]
    assert CURRENT in stages[token] and PENDING in stages[token]  # as AWS may leave it
    assert account.server.logs_in(MASTER, account.value(MASTER_SECRET, CURRENT)["password"])


@pytest.mark.slow
def test_test_secret_fails_on_a_wrong_password(account: Account) -> None:
    token = account.secrets.start_rotation(MASTER_SECRET)
    account.step(MASTER_SECRET, token, "createSecret")
    planted = account.value(MASTER_SECRET, PENDING) | {"password": "not-the-password"}
    account.secrets.secrets[MASTER_SECRET][token].value = json.dumps(planted)
    with pytest.raises(account.function.LoginError, match="password authentication failed") as failed:
        account.step(MASTER_SECRET, token, "testSecret")
    assert failed.value.refused
    assert account.value(MASTER_SECRET, CURRENT)["password"] == MASTER_PASSWORD  # not finished


# --- the login client ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login(function: Any) -> Any:
    return function.login


@pytest.mark.slow
def test_the_client_logs_in_with_scram_over_tls(server: Server, login: Any) -> None:
    how = login("localhost", server.port, MASTER, MASTER_PASSWORD, DATABASE, cafile=str(server.ca))
    assert how.startswith("TLSv1.") and how.endswith("SCRAM-SHA-256")


@pytest.mark.slow
def test_the_client_logs_in_with_md5(server: Server, login: Any) -> None:
    server.as_superuser("SET password_encryption = 'md5'; "
                        "CREATE ROLE md5_user LOGIN PASSWORD 'md5-Pa$$' ")
    try:
        assert login("localhost", server.port, "md5_user", "md5-Pa$$", DATABASE,
                     cafile=str(server.ca)).endswith(", md5")
        with pytest.raises(Exception, match="password authentication failed"):
            login("localhost", server.port, "md5_user", "wrong", DATABASE, cafile=str(server.ca))
    finally:
        server.as_superuser("DROP ROLE md5_user")


@pytest.mark.slow
def test_the_client_refuses_a_wrong_password_and_a_wrong_host_name(server: Server, login: Any) -> None:
    with pytest.raises(Exception, match="password authentication failed") as refused:
        login("localhost", server.port, MASTER, "wrong", DATABASE, cafile=str(server.ca))
    assert refused.value.code == "28P01"
    # the certificate names localhost, not 127.0.0.1: TLS verifies the host name
    with pytest.raises(ssl.SSLCertVerificationError):
        login("127.0.0.1", server.port, MASTER, MASTER_PASSWORD, DATABASE, cafile=str(server.ca))
    with pytest.raises(ssl.SSLCertVerificationError):  # nor is the throwaway CA trusted by default
        login("localhost", server.port, MASTER, MASTER_PASSWORD, DATABASE)
