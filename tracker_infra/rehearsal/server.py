"""A moto server on a free localhost port, run as a child process (render.py rehearse, the tests).

The server is the venv's moto server, run through moto_main.py (which patches the one gap of moto's
CloudFormation a re-plan of new stacks meets); it is stopped through the process it was started as
(terminate, wait, kill as the fallback), never by name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MOTO_SERVER = [sys.executable, str(Path(__file__).with_name("moto_main.py"))]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[bytes]

    @property
    def endpoint(self) -> str:
        # "localhost", not 127.0.0.1: moto reads the S3 bucket from the host name unless the URL
        # holds "localhost", and the SAM CLI passes TemplateURL=<endpoint>/<bucket>/<key>.
        return f"http://localhost:{self.port}"

    @classmethod
    def start(cls, log_path: Path, timeout: float = 20.0, env: dict[str, str] | None = None) -> MotoServer:
        """``env``: extra variables for the server (MOTO_ACCOUNT_ID, MOTO_ENABLE_RECORDING, ...)."""
        port = free_port()
        log = log_path.open("wb")
        process = subprocess.Popen(  # noqa: S603 - the venv's own moto server
            [*MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
        )
        server = cls(process, port, log_path, log)
        try:
            server._wait_until_up(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/moto-api/", timeout=1):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError(f"moto_server did not answer on port {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the process this object started: terminate, wait, kill if it will not stop."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
