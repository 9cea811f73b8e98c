# A PostgreSQL login with the standard library only, for the database rotation function
# (partials/database_rotation.py): its testSecret step must prove that a secret's pending
# password logs in, which the RDS Data API cannot (it takes a secret, never a password).
# Speaks PostgreSQL's frontend/backend protocol 3.0 (PostgreSQL documentation, "Message Flow"
# and "Message Formats"): SSLRequest, then TLS with the server's certificate and host name
# verified (no plaintext fallback), the startup message, SCRAM-SHA-256 (RFC 5802 and 7677,
# without channel binding) or md5 authentication, ReadyForQuery, Terminate. Passwords are used
# as UTF-8 without SASLprep, which changes nothing for the printable ASCII that Secrets
# Manager's GetRandomPassword draws. Runs no query.
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
PROTOCOL_3_0 = 196608
AUTH_OK, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 5, 10, 11, 12
SCRAM = "SCRAM-SHA-256"


class LoginError(Exception):
    """The login did not succeed; ``code`` is the server's SQLSTATE when it sent one."""

    def __init__(self, message, code=""):
        super().__init__(f"{message} (SQLSTATE {code})" if code else message)
        self.code = code

    @property
    def refused(self):
        """The server refused these credentials (SQLSTATE class 28, invalid authorization)."""
        return self.code.startswith("28")


class Wire:
    """Messages over a connected socket: a type byte, a length, the body."""

    def __init__(self, sock):
        self.sock = sock

    def send(self, kind, body):
        self.sock.sendall(kind + struct.pack("!i", len(body) + 4) + body)

    def exactly(self, size):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise LoginError("the server closed the connection")
            data += chunk
        return data

    def read(self):
        """The next message (type, body); an ErrorResponse raises LoginError."""
        kind, length = struct.unpack("!ci", self.exactly(5))
        body = self.exactly(length - 4)
        if kind == b"E":
            fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
            raise LoginError(fields.get(b"M", "error"), fields.get(b"C", ""))
        return kind, body

    def auth_request(self, expected=None):
        """An Authentication message: its code and the rest of its body."""
        kind, body = self.read()
        (code,) = struct.unpack("!i", body[:4]) if kind == b"R" else (None,)
        if code is None or expected not in (None, code):
            raise LoginError(f"unexpected message {kind!r} {code} during authentication")
        return code, body[4:]


def md5_response(user, password, salt):
    inner = hashlib.md5((password + user).encode()).hexdigest()  # noqa: S324 - the protocol's
    return b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode() + b"\0"  # noqa: S324


def scram(wire, password, mechanisms):
    """SCRAM-SHA-256 from the client's first message to the server's verified signature."""
    if SCRAM.encode() not in mechanisms.split(b"\0"):
        raise LoginError(f"the server offers no {SCRAM} (offered: {mechanisms!r})")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"  # the user name is the startup message's
    first = f"n,,{first_bare}".encode()
    wire.send(b"p", SCRAM.encode() + b"\0" + struct.pack("!i", len(first)) + first)
    server_first = wire.auth_request(AUTH_SASL_CONTINUE)[1].decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    if not attrs.get("r", "").startswith(nonce):
        raise LoginError("the server's SCRAM nonce does not extend the client's")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    final_bare = f"c=biws,r={attrs['r']}"  # biws: base64 of "n,,", no channel binding
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    wire.send(b"p", f"{final_bare},p={proof}".encode())
    server_final = wire.auth_request(AUTH_SASL_FINAL)[1].decode()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = base64.b64encode(hmac.digest(server_key, auth_message, "sha256")).decode()
    if not hmac.compare_digest(server_final, f"v={expected}"):
        raise LoginError("the server's SCRAM signature is wrong: it does not know the password")


def authenticate(wire, user, password):
    """Answer the server's authentication requests; the method that was used."""
    code, data = wire.auth_request()
    if code == AUTH_MD5:
        wire.send(b"p", md5_response(user, password, data[:4]))
        method = "md5"
    elif code == AUTH_SASL:
        scram(wire, password, data)
        method = SCRAM
    elif code == AUTH_OK:  # no password asked: the login proves nothing about it
        raise LoginError("the server asked for no password (allowed: SCRAM-SHA-256, md5)")
    else:
        raise LoginError(f"authentication method {code} is not supported (allowed: {SCRAM}, md5)")
    wire.auth_request(AUTH_OK)
    return method


def login(host, port, user, password, database, cafile=None, timeout=10.0):
    """Log in over verified TLS, wait until the server is ready for a query, and close.
    Returns how: the TLS version and the authentication method. Raises LoginError."""
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        raw.sendall(SSL_REQUEST)
        if raw.recv(1) != b"S":
            raise LoginError(f"{host}:{port} does not accept TLS")
        with context.wrap_socket(raw, server_hostname=host) as sock:
            wire = Wire(sock)
            params = b"".join(k + b"\0" + v.encode() + b"\0"
                              for k, v in ((b"user", user), (b"database", database)))
            wire.send(b"", struct.pack("!i", PROTOCOL_3_0) + params + b"\0")  # the startup message
            method = authenticate(wire, user, password)
            while wire.read()[0] != b"Z":  # ParameterStatus, BackendKeyData, notices
                pass
            wire.send(b"X", b"")
            return f"{sock.version()}, {method}"
