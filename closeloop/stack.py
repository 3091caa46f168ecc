"""The six services (the five feedback services and the console) as separate processes: start, wait
until ready, kill, restart, stop.

Used by ``closeloop dev`` and by the end-to-end tests and benchmarks, so that what a developer
runs is what the tests run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from closeloop.infra import die_with_parent
from shared.vocabulary import SERVICES

SERVICE_PORTS: dict[str, int] = {**{name: 8001 + i for i, name in enumerate(SERVICES)}, "console": 8000}
"""trigger 8001, dispatch 8002, responses 8003, scoring 8004, followup 8005, and console 8000."""


@dataclass
class ServiceStack:
    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    host: str = "127.0.0.1"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}"

    def service_env(self) -> dict[str, str]:
        """Environment for every service process: the given env plus how services find each other."""
        return {
            # A developer's machine or a test run: a missing or short secret is warned about, not fatal.
            "CLOSELOOP_ENV": "development",
            **os.environ,
            "CLOSELOOP_TRIGGER_PUBLIC_URL": self.url("trigger"),
            "CLOSELOOP_DISPATCH_SURVEY_BASE_URL": self.url("responses"),
            # Every message links through dispatch's short link; the deprecated settings name trigger's.
            "CLOSELOOP_DISPATCH_PUBLIC_URL": self.url("dispatch"),
            "CLOSELOOP_DISPATCH_TRIGGER_URL": self.url("trigger"),
            "CLOSELOOP_RESPONSES_PUBLIC_URL": self.url("responses"),
            **({"CLOSELOOP_CONSOLE_PUBLIC_URL": self.url("console")} if "console" in self.ports else {}),
            # The console's pages call the five services' REST APIs.
            **{
                f"CLOSELOOP_CONSOLE_{name.upper()}_URL": self.url(name)
                for name in SERVICES
                if name in self.ports
            },
            **self.env,
        }

    def start(self, service: str, *, role: str = "all", name: str | None = None) -> subprocess.Popen:
        """Start one service. ``role`` api or worker runs one half of it (``closeloop serve --role``),
        known as ``<service>-<role>`` here, on the port ``ports`` gives that name; ``name`` names a
        further process of the service (e.g. ``dispatch-b``, a second replica) the same way."""
        name = name or (service if role == "all" else f"{service}-{role}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "closeloop.cli",
                "serve",
                service,
                "--host",
                self.host,
                "--port",
                str(self.ports[name]),
                "--role",
                role,
            ],
            env=self.service_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.processes[name] = process
        return process

    def start_all(self) -> None:
        for service in self.ports:
            self.start(service)

    def wait_ready(
        self, services: list[str] | None = None, *, timeout_s: float = 90, on_ready: object = None
    ) -> None:
        """Block until every service answers ``/readyz`` with 200; raise with its log tail otherwise."""
        pending = list(services or self.ports)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            while pending:
                for service in list(pending):
                    process = self.processes.get(service)
                    if process is not None and process.poll() is not None:
                        raise RuntimeError(
                            f"{service} exited with {process.returncode}:\n{self.log_tail(service)}"
                        )
                    try:
                        if client.get(self.url(service) + "/readyz").status_code == 200:
                            pending.remove(service)
                            if callable(on_ready):
                                on_ready(service)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {s}\n{self.log_tail(s)}" for s in pending)
                    raise TimeoutError(f"not ready after {timeout_s}s: {', '.join(pending)}\n{tails}")
                if pending:
                    time.sleep(0.1)
        for service in services or self.ports:
            process = self.processes.get(service)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{service} exited with {process.returncode}:\n{self.log_tail(service)}")

    def kill(self, service: str) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash or an OOM kill."""
        process = self.processes.pop(service)
        process.kill()
        process.wait()

    def stop(self, service: str, *, timeout_s: float = 25) -> None:
        """SIGTERM and wait: the service drains its in-flight work first."""
        process = self.processes.pop(service, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for service in list(self.processes):
            process = self.processes[service]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for service in list(self.processes):
            self.stop(service)

    def log_tail(self, service: str, lines: int = 40) -> str:
        path = self.log_dir / f"{service}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
