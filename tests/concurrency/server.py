"""The platform served for real: gunicorn (several processes, threads) on 127.0.0.1 over a throwaway SQLite file.

The database is migrated and seeded by subprocesses with their own DATABASE_URL, so pytest's test database is never
involved; the tests read the results back with plain sqlite3.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
SETTINGS = "config.settings"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(db_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DJANGO_DEBUG="0",  # as deployed: no query log, no debug pages
        SECURE_SSL_REDIRECT="0",  # plain HTTP on the loopback
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(REPO),
    )
    return env


class PlatformServer:
    """`with PlatformServer(tmp_dir) as server:` migrates a fresh database, serves it, and stops the server after."""

    def __init__(self, tmp_dir: Path, workers: int = 3, threads: int = 4):
        self.db_path = Path(tmp_dir) / "server.sqlite3"
        self.env = server_env(self.db_path)
        self.workers, self.threads = workers, threads
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tmp_dir) / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PlatformServer":
        self._django("manage.py", "migrate", "--noinput", "-v0")
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _django(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def seed(self, slug: str, **options: int) -> dict:
        """A project with prompts and labelers (with API tokens), written through the services."""
        args = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
        return json.loads(self._django("-m", "tests.concurrency.seed", f"--slug={slug}", *args).splitlines()[-1])

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--threads", str(self.threads),
            "--worker-class", "gthread", "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
            "--preload",  # import Django once, then fork: all workers are up when the first one answers
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log()}")
            try:
                if requests.get(f"{self.base_url}/accounts/login/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # the arbiter stops its own workers
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def db(self) -> sqlite3.Connection:
        """A plain connection to the server's database, for checking what was stored."""
        return sqlite3.connect(self.db_path, timeout=30)
