"""Stand-ins shared by the tests that serve the site or talk to local HTTPS servers.

The Vite React build of tests/browser (built once per session; the ``dist`` fixture in
conftest.py), the edge function loaded as the renderer lays it out, CloudFront's documented
origin-response event, a throwaway CA, and a server thread.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import importlib.util
import itertools
import shutil
import subprocess
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "browser"
HANDLER_SOURCE = ROOT / "edge" / "handler.py"


def run_in_app(cmd: list[str], timeout: int, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=APP, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_dist() -> Path:
    """npm ci (only when package-lock.json changed since the last one) and vite build."""
    lock = hashlib.sha256((APP / "package-lock.json").read_bytes()).hexdigest()
    stamp = APP / "node_modules" / ".tracker-lock.sha256"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != lock:
        run_in_app(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"], timeout=600)
        stamp.write_text(lock, encoding="utf-8")
    run_in_app(["npm", "run", "build"], timeout=300)
    built = APP / "dist"
    assert (built / "index.html").is_file()
    return built


_counter = itertools.count()


def edge_handler(directory: Path, headers_file: Path) -> ModuleType:
    directory.mkdir(parents=True)
    shutil.copyfile(HANDLER_SOURCE, directory / "handler.py")
    shutil.copyfile(headers_file, directory / "headers.json")
    spec = importlib.util.spec_from_file_location(
        f"edge_handler_standin_{next(_counter)}", directory / "handler.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def origin_response_event(uri: str, status: int, content_type: str, length: int) -> dict[str, Any]:
    """What CloudFront hands the function for this object (shape: AWS's documented one)."""
    reason = http.HTTPStatus(status).phrase
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": "d111111abcdef8.cloudfront.net",
                        "distributionId": "EDFDVBD6EXAMPLE",
                        "eventType": "origin-response",
                        "requestId": "local-test",
                    },
                    "request": {
                        "clientIp": "127.0.0.1",
                        "headers": {},
                        "method": "GET",
                        "querystring": "",
                        "uri": uri,
                    },
                    "response": {
                        "headers": {
                            "content-type": [{"key": "Content-Type", "value": content_type}],
                            "content-length": [{"key": "Content-Length", "value": str(length)}],
                            "server": [{"key": "Server", "value": "AmazonS3"}],
                        },
                        "status": str(status),
                        "statusDescription": reason,
                    },
                }
            }
        ]
    }


def serve(server: http.server.HTTPServer) -> threading.Thread:
    # server.shutdown() waits for the loop's next poll: 0.05 s, not serve_forever's default 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def local_ca(directory: Path, names: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for ``names`` signed by it (PEM files: CA, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tracker-infra test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem
