"""What the bench scripts do around their measurement: the command line (``python -m bench.NAME``, the
module's docstring as its help), the child processes they start and stop, and the closing exit code."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from closeloop.infra import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def arguments(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m {module}``, whose help is ``doc`` as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run(
    main: Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]], parser: argparse.ArgumentParser
) -> NoReturn:
    """Run ``main`` with the parsed command line and exit with what it returns (``None``: 0)."""
    sys.exit(asyncio.run(main(parser.parse_args())))


def service_env(database_url: str, bootstrap_servers: str, secret_key: str, **more: str) -> dict[str, str]:
    """The environment of the services a bench starts: its database, broker and secret, warnings and
    errors only in the logs, and ``more``."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CLOSELOOP_SECRET_KEY": secret_key,
        "LOG_LEVEL": "WARNING",
        **more,
    }


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` with ``env``; it dies with this process."""
    return subprocess.Popen(command, env=env, preexec_fn=die_with_parent)


def stop(child: subprocess.Popen[bytes]) -> None:
    """Terminate ``child``, and kill it when it has not stopped within 30 s."""
    child.terminate()
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        child.kill()


def serve_factory(
    factory: str, host: str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Serve the app that ``factory`` ("module:function") makes under uvicorn, as a process, with the
    uvicorn settings the services use (``env``: its environment, None: this process's)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
