"""A local PostgreSQL server and stand-ins of the AWS calls the database functions make, shared by
the tests that run those functions for real (tests/test_database_user_setup.py,
tests/test_database_rotation.py).

The server is Debian's PostgreSQL (15 here; Aurora runs the engine version in vars), started in a
temporary folder on a free localhost port, with TLS (a certificate for ``localhost`` from a
throwaway CA, tests/standins.py) and md5 in pg_hba.conf, under which a role whose password is
stored as SCRAM (the default, as on Aurora) still authenticates with SCRAM-SHA-256 (PostgreSQL
documentation, "Password Authentication"), and a role stored as md5 with md5. The master user is
made like Aurora's: CREATEROLE and CREATEDB, owner of the database and of schema public, not a
superuser.

``DataApi`` is the RDS Data API's ExecuteStatement: the SQL runs through psql as the user of the
secret it is given (that secret's AWSCURRENT value), the named parameters (``:name``) bound as psql
variables quoted as literals (``:'name'``), which is what the Data API's typed parameters are to
PostgreSQL. ``SecretsManager`` keeps each secret's versions and staging labels as the Secrets
Manager API Reference describes them (PutSecretValue, UpdateSecretVersionStage: a label is on one
version at a time; moving AWSCURRENT moves AWSPREVIOUS to the version it left).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as random
import shutil
import string
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.standins import local_ca
from tracker_infra.rehearsal.server import free_port

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists()), None)
MASTER, MASTER_PASSWORD, DATABASE = "tracker_admin", "master-Secret-1", "tracker"
SUPERUSER_PASSWORD = "postgres-Secret-1"
CLUSTER = "arn:aws:rds:us-east-1:1:cluster:tracker-staging"
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

needs_postgres = pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries are not "
                                    "installed (.ci/run installs Debian's postgresql)")


@dataclass
class Server:
    port: int
    bin: Path
    ca: Path  # the CA that signed the server's certificate (for localhost)

    def env(self, user: str, password: str, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "PGHOST": "127.0.0.1",
                "PGPORT": str(self.port), "PGDATABASE": DATABASE, "PGUSER": user,
                "PGPASSWORD": password, "PGSSLMODE": "disable"} | extra

    def sql(self, user: str, password: str, query: str, check: bool = True,
            database: str = DATABASE) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "psql"), "-v", "ON_ERROR_STOP=1", "-tAc", query],
                              env=self.env(user, password, PGDATABASE=database), capture_output=True,
                              text=True, check=check, timeout=30)

    def as_superuser(self, query: str, database: str = DATABASE) -> str:
        return self.sql("postgres", SUPERUSER_PASSWORD, query, database=database).stdout.strip()

    def logs_in(self, user: str, password: str) -> bool:
        return self.sql(user, password, "SELECT 1", check=False).returncode == 0


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _owned_by_postgres(*paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres")


@contextlib.contextmanager
def running_server() -> Iterator[Server]:
    assert PG_BIN is not None
    # Not under pytest's temporary folder: as root that is private to root, and the server runs
    # as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
    data, pwfile = base / "data", base / "pw"
    pwfile.write_text(f"{SUPERUSER_PASSWORD}\n")
    ca, cert, key = local_ca(base)
    key.chmod(0o600)  # the server refuses a key others can read
    _owned_by_postgres(base, pwfile, cert, key)
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=md5", f"--pwfile={pwfile}"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c ssl=on "
               f"-c ssl_cert_file={cert} -c ssl_key_file={key}"
               " -c password_encryption=scram-sha-256")  # initdb --auth=md5 wrote md5
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                                 "-o", options, "start"]), check=True, capture_output=True, timeout=60)
    running = Server(port, PG_BIN, ca)
    try:
        running.as_superuser(f"CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB PASSWORD '{MASTER_PASSWORD}'",
                             database="postgres")
        running.as_superuser(f"CREATE DATABASE {DATABASE} OWNER {MASTER}", database="postgres")
        # As on Aurora: schema public belongs to the master user (its database's owner).
        running.as_superuser(f"ALTER SCHEMA public OWNER TO {MASTER}")
        yield running
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


class ResourceNotFoundError(Exception):
    """Secrets Manager's ResourceNotFoundException."""


@dataclass
class Version:
    value: str | None  # None: a version Secrets Manager made for a rotation, not yet written
    labels: set[str] = field(default_factory=set)


class SecretsManager:
    """The Secrets Manager calls the functions make, on secrets kept here."""

    class exceptions:  # noqa: N801 - boto3's client.exceptions
        ResourceNotFoundException = ResourceNotFoundError

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Version]] = {}

    def create(self, arn: str, value: str) -> None:
        self.secrets[arn] = {str(uuid.uuid4()): Version(value, {CURRENT})}

    def start_rotation(self, arn: str) -> str:
        """What RotateSecret does before it calls createSecret: a new version id under
        AWSPENDING, holding no value yet."""
        token = str(uuid.uuid4())
        self.secrets[arn][token] = Version(None)
        self._attach(arn, token, PENDING)
        return token

    def _attach(self, arn: str, version: str, label: str) -> None:
        versions = self.secrets[arn]
        for other_id, other in versions.items():
            if label in other.labels and other_id != version:
                other.labels.discard(label)
                if label == CURRENT:
                    self._attach(arn, other_id, PREVIOUS)
        versions[version].labels.add(label)

    def describe_secret(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        stages = {v: sorted(version.labels) for v, version in self.secrets[SecretId].items()
                  if version.labels}
        return {"ARN": SecretId, "RotationEnabled": True, "VersionIdsToStages": stages}

    def get_secret_value(self, SecretId: str, VersionId: str | None = None,  # noqa: N803
                         VersionStage: str | None = None) -> dict[str, Any]:
        stage = VersionStage or (None if VersionId else CURRENT)
        for version_id, version in self.secrets[SecretId].items():
            if VersionId in (None, version_id) and (stage is None or stage in version.labels):
                if version.value is None:
                    break
                return {"ARN": SecretId, "VersionId": version_id, "SecretString": version.value}
        raise ResourceNotFoundError(f"no value of {SecretId} at {VersionId} {VersionStage}")

    def put_secret_value(self, SecretId: str, ClientRequestToken: str, SecretString: str,  # noqa: N803
                         VersionStages: list[str] | None = None) -> None:
        versions = self.secrets[SecretId]
        existing = versions.setdefault(ClientRequestToken, Version(None))
        if existing.value not in (None, SecretString):
            raise AssertionError(f"version {ClientRequestToken} exists with another value")
        existing.value = SecretString
        for label in VersionStages or [CURRENT]:
            self._attach(SecretId, ClientRequestToken, label)

    def update_secret_version_stage(self, SecretId: str, VersionStage: str, MoveToVersionId: str,  # noqa: N803
                                    RemoveFromVersionId: str) -> None:
        holder = next(v for v, version in self.secrets[SecretId].items() if VersionStage in version.labels)
        assert holder == RemoveFromVersionId, "the label must be removed from the version that has it"
        self._attach(SecretId, MoveToVersionId, VersionStage)

    def get_random_password(self, PasswordLength: int, ExcludeCharacters: str) -> dict[str, str]:  # noqa: N803
        alphabet = [c for c in string.ascii_letters + string.digits + string.punctuation
                    if c not in ExcludeCharacters]
        return {"RandomPassword": "".join(random.choice(alphabet) for _ in range(PasswordLength))}

    def labelled(self, arn: str, label: str) -> str:
        return self.get_secret_value(arn, VersionStage=label)["SecretString"]


def client_error(code: str, status: int, message: str) -> Any:
    """An error as boto3 raises it for the service's answer (its code and HTTP status)."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "ExecuteStatement")


@dataclass
class DataApi:
    """ExecuteStatement as the user of the secret it is given, through psql."""

    server: Server
    secrets: SecretsManager

    def execute_statement(self, sql: str, resourceArn: str, secretArn: str, database: str,  # noqa: N803
                          parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        assert resourceArn == CLUSTER and database == DATABASE
        master = json.loads(self.secrets.labelled(secretArn, CURRENT))
        args = [str(self.server.bin / "psql"), "-v", "ON_ERROR_STOP=1", "-tA"]
        for p in parameters or []:
            args += ["-v", f"{p['name']}={p['value']['stringValue']}"]
            sql = re.sub(rf":{p['name']}\b", f":'{p['name']}'", sql)
        done = subprocess.run(args, input=sql, env=self.server.env(master["username"], master["password"]),
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise client_error("DatabaseErrorException", 400, done.stderr.strip())
        return {"records": [[{"stringValue": line}] for line in done.stdout.splitlines() if line]}
