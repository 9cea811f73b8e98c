"""The database user setup task's script, run for real against a local PostgreSQL server.

The script is read from the rendered template (``DatabaseUserSetupTaskDefinition``, the command
ECS runs with ``sh -c``) and run with the environment ECS would give it: the master user's
connection from ``DatabaseSecret``, the API user's name and password from ``ApiDatabaseSecret``.
The server is Debian's PostgreSQL (15 here; Aurora runs the engine version in vars), started in a
temporary folder on a free localhost port. The master user is made like Aurora's: CREATEROLE and
CREATEDB, owner of the database, not a superuser.

Proves: the script creates the API's user, who can log in with the secret's password and create
tables in schema public but cannot create roles or databases and is no member of the master
user; a second run (after a restore, or a password change) resets the password and changes
nothing else; a password with the characters the secret may hold is quoted safely; the clone the
alternating-users rotation makes (``CREATE ROLE <user>_clone ...; GRANT <user> TO <user>_clone``,
as the master user) works on what the script made. Does not prove: Aurora's own roles
(rds_superuser), TLS (the task sets PGSSLMODE=require; the local server has no certificate).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import config, render
from tests.moto_server import free_port

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


def setup_script() -> str:
    """The command the setup task runs, from the rendered staging template."""
    task = render(config("staging"))["Resources"]["DatabaseUserSetupTaskDefinition"]["Properties"]
    container = task["ContainerDefinitions"][0]
    assert container["EntryPoint"] == ["sh", "-c"]
    (script,) = container["Command"]
    return script


def run_setup(server: Server, user: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", setup_script()], capture_output=True, text=True, timeout=60,
                          env=server.env(MASTER, MASTER_PASSWORD, APP_USER=user, APP_PASSWORD=password))


def test_the_setup_creates_a_least_privilege_user_who_can_log_in(server: Server) -> None:
    user = config("staging").database.app_username
    done = run_setup(server, user, "first-Pa$$w0rd;%{x}")
    assert done.returncode == 0, done.stderr
    assert f"database user {user} is ready" in done.stdout
    password = "first-Pa$$w0rd;%{x}"
    assert server.sql(user, password, "SELECT current_user").stdout.strip() == user
    server.sql(user, password, "CREATE TABLE activities (id int PRIMARY KEY)")
    assert server.sql(user, password, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                      "WHERE rolname = current_user").stdout.strip() == "f"
    assert server.sql(user, password, f"SELECT pg_has_role('{MASTER}', 'MEMBER')").stdout.strip() == "f"
    denied = server.sql(user, password, "CREATE ROLE intruder", check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    # the master user's password does not work for it, nor its own for the master
    assert server.sql(user, MASTER_PASSWORD, "SELECT 1", check=False).returncode != 0


def test_a_second_run_resets_the_password_and_keeps_the_data(server: Server) -> None:
    user = config("staging").database.app_username
    assert run_setup(server, user, "first-Pa$$w0rd;%{x}").returncode == 0
    server.sql(user, "first-Pa$$w0rd;%{x}", "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    server.sql(user, "first-Pa$$w0rd;%{x}", "INSERT INTO activities VALUES (1) ON CONFLICT DO NOTHING")
    done = run_setup(server, user, "second-Pa$$w0rd")
    assert done.returncode == 0, done.stderr
    assert server.sql(user, "first-Pa$$w0rd;%{x}", "SELECT 1", check=False).returncode != 0
    assert server.sql(user, "second-Pa$$w0rd", "SELECT count(*) FROM activities").stdout.strip() == "1"


def test_the_rotations_clone_works_on_what_the_setup_made(server: Server) -> None:
    """What the alternating-users rotation does as the master user on its first run."""
    user = config("staging").database.app_username
    assert run_setup(server, user, "current-Pa$$").returncode == 0
    server.sql(user, "current-Pa$$", "CREATE TABLE IF NOT EXISTS activities (id int PRIMARY KEY)")
    server.sql(MASTER, MASTER_PASSWORD, f"DROP ROLE IF EXISTS {user}_clone")
    server.sql(MASTER, MASTER_PASSWORD, f"CREATE ROLE {user}_clone WITH LOGIN PASSWORD 'clone-Pa$$'")
    server.sql(MASTER, MASTER_PASSWORD, f"GRANT {user} TO {user}_clone")
    assert server.sql(f"{user}_clone", "clone-Pa$$", "SELECT count(*) FROM activities").returncode == 0
    # the previous credentials still work: a running task is not cut off
    assert server.sql(user, "current-Pa$$", "SELECT 1").stdout.strip() == "1"


def test_a_wrong_master_password_fails_the_task(server: Server) -> None:
    done = subprocess.run(["sh", "-c", setup_script()], capture_output=True, text=True, timeout=60,
                          env=server.env(MASTER, "wrong", APP_USER="someone", APP_PASSWORD="x"))
    assert done.returncode != 0 and "password authentication failed" in done.stderr
