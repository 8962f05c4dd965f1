"""Real third-party servers started by the tests on loopback: coturn (Debian's ``turnserver``)
and PostgreSQL (Debian's ``postgresql``)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webrtc_ext import RTCIceServer

TURNSERVER = shutil.which("turnserver")
REALM = "webrtc-relay.test"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1, written as PEM files (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Coturn:
    """A running coturn on 127.0.0.1."""

    port: int
    tls_port: int
    cert_path: Path
    username: str | None
    password: str | None
    secret: str | None

    def ice_server(
        self, transport: str = "udp", username: str | None = None, password: str | None = None
    ) -> RTCIceServer:
        """An RTCIceServer for this coturn over ``udp``, ``tcp`` or ``tls``."""
        if transport == "tls":
            url = f"turns:127.0.0.1:{self.tls_port}?transport=tcp"
        else:
            url = f"turn:127.0.0.1:{self.port}?transport={transport}"
        return RTCIceServer(
            url,
            username=username if username is not None else self.username,
            credential=password if password is not None else self.password,
        )

    def rest_credentials(self, user: str, ttl: int = 3600) -> tuple[str, str]:
        """TURN REST API credentials from the shared secret (username = expiry:user)."""
        assert self.secret is not None
        username = f"{int(time.time()) + ttl}:{user}"
        digest = hmac.new(self.secret.encode(), username.encode(), hashlib.sha1).digest()
        return username, base64.b64encode(digest).decode()


@contextlib.contextmanager
def coturn(
    directory: Path,
    *,
    username: str = "alice",
    password: str = "wonderland",
    secret: str | None = None,
) -> Iterator[Coturn]:
    """Run coturn on loopback with long-term credentials (or a REST API shared secret)."""
    if TURNSERVER is None:
        pytest.skip("coturn (Debian package coturn, /usr/bin/turnserver) is not installed")
    port, tls_port = free_port(), free_port()
    cert_path, key_path = self_signed_certificate(directory)
    relay_min = 49152 + (port % 1000) * 10
    args = [
        TURNSERVER, "-n", "--no-cli", "--simple-log", "--log-file", "stdout",
        "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
        "--listening-port", str(port), "--tls-listening-port", str(tls_port),
        "--cert", str(cert_path), "--pkey", str(key_path), "--no-dtls",
        "--min-port", str(relay_min), "--max-port", str(relay_min + 9),
        "--allow-loopback-peers", "--realm", REALM, "--fingerprint",
        "--pidfile", str(directory / "turnserver.pid"),
        "--userdb", str(directory / "turndb.sqlite"),
    ]  # fmt: skip
    if secret is not None:
        args += ["--use-auth-secret", f"--static-auth-secret={secret}"]
    else:
        args += ["--lt-cred-mech", "--user", f"{username}:{password}"]
    log = (directory / "turnserver.log").open("w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, directory / "turnserver.log")
        yield Coturn(
            port=port,
            tls_port=tls_port,
            cert_path=cert_path,
            username=None if secret else username,
            password=None if secret else password,
            secret=secret,
        )
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server the tests started; kill it if it does not exit within 5 s."""
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _wait_listening(
    port: int, process: subprocess.Popen[bytes], log: Path, name: str = "turnserver"
) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port}: {log.read_text()[-2000:]}")


def _postgres_bin(name: str) -> str | None:
    """A binary of Debian's newest installed PostgreSQL (they live outside PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return str(found[-1]) if found else shutil.which(name)


_DATABASE_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class PostgreSQL:
    """A running PostgreSQL on 127.0.0.1 (trust authentication, superuser ``relay``)."""

    port: int
    user: str = "relay"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy async URL of ``database`` on this server."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The libpq/asyncpg DSN of ``database``."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its SQLAlchemy async URL."""
        name = f"{prefix}_{next(_DATABASE_NUMBERS)}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def execute(self, sql: str) -> None:
        """Run one SQL statement as the superuser (``psql``)."""
        psql = _postgres_bin("psql")
        assert psql is not None
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", self.dsn(), "-c", sql],
            check=True,
            capture_output=True,
        )


@contextlib.contextmanager
def postgresql() -> Iterator[PostgreSQL]:
    """Run Debian's PostgreSQL on loopback in a scratch directory, stopped on exit.

    ``initdb`` and ``postgres`` refuse to run as root, so as root (CI) they run as the ``postgres``
    user the Debian package creates, in a directory it owns.
    """
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    if initdb is None or postgres is None:
        pytest.skip("PostgreSQL (Debian package postgresql) is not installed")
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    directory = Path(tempfile.mkdtemp(prefix="relay-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        uid, gid, groups = account.pw_uid, account.pw_gid, []
        os.chown(directory, uid, gid)
    data, log_path = directory / "data", directory / "postgres.log"
    port = free_port(socket.SOCK_STREAM)
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "HOME": str(directory)}
    subprocess.run(
        [initdb, "-D", str(data), "-U", "relay", "--auth=trust", "-E", "UTF8", "--no-locale"],
        check=True, capture_output=True, env=env, user=uid, group=gid, extra_groups=groups,
    )  # fmt: skip
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(directory), "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, user=uid, group=gid, extra_groups=groups,
    )  # fmt: skip
    try:
        _wait_accepting(port, process, log_path)
        yield PostgreSQL(port=port)
    finally:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, stop
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {log.read_text()[-2000:]}")
        if "ready to accept connections" in log.read_text():
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"postgres did not start on {port}: {log.read_text()[-2000:]}")


REDIS_SERVER = shutil.which("redis-server")


@dataclass(frozen=True)
class Redis:
    """A running redis-server on 127.0.0.1."""

    port: int

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[Redis]:
    """Run Debian's redis-server on loopback, in ``directory``, without persistence."""
    if REDIS_SERVER is None:
        pytest.skip("Redis (Debian package redis-server) is not installed")
    port = free_port(socket.SOCK_STREAM)
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    log = (directory / "redis.log").open("w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, directory / "redis.log", "redis-server")
        yield Redis(port)
    finally:
        _stop(process)
        log.close()
