"""The ``relay-service`` command: ``serve``, ``demo``, ``migrate`` and ``hash-password``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib.util
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: Modules of the ``[service]`` extra (some are imported only when a call needs them). The
#: service's own modules are imported after checking them, so that ``relay-service`` without
#: the extra says what to install instead of failing with a traceback.
SERVICE_MODULES = (
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "pydantic_settings",
    "prometheus_client",
    "structlog",
    "openai",
    "pocketsphinx",
    "argon2",
)

SERVICE_EXTRA_HINT = (
    "the service's dependencies come with the [service] extra: "
    "pip install 'webrtc-relay[service]' (from a checkout: pip install '.[service]')"
)


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    top = argparse.ArgumentParser(
        prog="relay-service", description="WhatsApp voice calls answered in the browser."
    )
    top.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the service as configured by the environment / .env")
    commands.add_parser(
        "migrate",
        help="bring the database (RELAY_DATABASE_URL) to the newest schema and exit "
        "(serve does this at start too)",
    )
    demo = commands.add_parser(
        "demo",
        help="run the service with the WhatsApp and OpenAI Realtime simulators on loopback",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    hashing = commands.add_parser(
        "hash-password",
        help="print the Argon2 hash of a password (from the terminal or standard input), "
        "for RELAY_AGENTS=name:<hash>",
    )
    hashing.add_argument("--name", help="print name:<hash>, ready for RELAY_AGENTS")
    return top


def read_password() -> str:
    """A password typed twice at a terminal, or the first line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise ValueError("the passwords differ")
    return password


def hash_password_command(name: str | None) -> int:
    """``relay-service hash-password``: print the hash (exit 2 on an empty password)."""
    from .passwords import hash_password

    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        print(f"relay-service: {exc or 'no password given'}", file=sys.stderr)
        return 2
    if not password:
        print("relay-service: the password is empty", file=sys.stderr)
        return 2
    hashed = hash_password(password)
    print(f"{name}:{hashed}" if name else hashed)
    return 0


def media_for(host: str) -> str:
    """Media addresses that match the HTTP address a browser will use."""
    if host in ("0.0.0.0", "::", ""):
        return "*"
    if host in ("localhost", "127.0.0.1", "::1"):
        return "127.0.0.1"
    return host


def demo_environment(host: str, port: int, data_dir: str) -> dict[str, str]:
    """The environment of ``relay-service demo``: simulators on, loopback, a scratch database."""
    environ = dict(os.environ)
    environ.update(
        {
            "RELAY_HOST": host,
            "RELAY_PORT": str(port),
            "SIMULATORS": "on",
            "RELAY_MEDIA_ADDRESSES": environ.get("RELAY_MEDIA_ADDRESSES", media_for(host)),
            "RELAY_DATA_DIR": environ.get("RELAY_DATA_DIR", data_dir),
        }
    )
    # The AI assistant and live transcription are on, against the embedded Realtime simulator.
    environ.setdefault("ASSISTANT_ENABLED", "on")
    environ.setdefault("TRANSCRIPTION_ENABLED", "on")
    for name in (
        "WHATSAPP_GRAPH_BASE_URL",
        "RELAY_PUBLIC_URL",
        "RELAY_DATABASE_URL",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ):
        environ.pop(name, None)
    return environ


def missing_service_module() -> str | None:
    """The first module of the ``[service]`` extra that is not installed, if any."""
    for name in SERVICE_MODULES:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    missing = missing_service_module()
    try:
        if missing is None:
            from . import logs
            from .settings import DEMO_AGENT, Settings, SettingsError
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in ("relay_service", "webrtc_ext"):
            raise
        missing = exc.name
    if missing is not None:
        print(f"relay-service: {missing} is not installed; {SERVICE_EXTRA_HINT}", file=sys.stderr)
        return 2
    if args.command == "hash-password":
        return hash_password_command(args.name)
    with contextlib.ExitStack() as stack:
        hint = None
        try:
            if args.command == "demo":
                scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="relay-demo-"))
                environ = demo_environment(args.host, args.port, scratch)
                settings = Settings.from_env(environ, dotenv=None)
                hint = "the accounts of RELAY_AGENTS"
                if not environ.get("RELAY_AGENTS", "").strip():
                    hint = " / ".join(DEMO_AGENT)
            else:
                settings = Settings.from_env(dotenv=Path(".env"), serve=args.command == "serve")
        except SettingsError as exc:
            print(f"relay-service: {exc}", file=sys.stderr)
            return 2
        logs.configure(args.log_level, settings.log_format)
        if args.command == "migrate":
            return migrate(settings.database_url)
        from .app import run  # the media stack loads only for the commands that serve
        from .memory import limit_malloc_arenas, watch_python_arenas

        with contextlib.suppress(KeyboardInterrupt):
            limit_malloc_arenas()  # before the service starts any thread
            watch_python_arenas()
            asyncio.run(run(settings, sign_in_hint=hint))
    return 0


def migrate(database_url: str) -> int:
    """``relay-service migrate``: upgrade the schema to the newest revision, say which."""
    from sqlalchemy.exc import SQLAlchemyError

    from .storage import Storage

    async def upgrade() -> str:
        storage = Storage(database_url)
        try:
            await storage.start()
            return await storage.revision()
        finally:
            await storage.close()

    try:
        revision = asyncio.run(upgrade())
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        print(f"relay-service: cannot migrate the database: {exc}", file=sys.stderr)
        return 1
    print(f"database at revision {revision} (newest)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
