"""Labeling load benchmark: many labelers at once doing next -> submit against a real gunicorn server.

Serves the platform with gunicorn (3 sync workers by default) on 127.0.0.1 over a fresh database, seeds a project
(default 10,000 prompts x 4 responses, overlap 3, 100 labelers with API tokens) with bulk inserts, then runs
`--concurrency` simulated labelers for `--seconds`: each loops POST /api/projects/{slug}/tasks/next/ ->
POST /api/tasks/{id}/submit/. The load generator is one asyncio process with kept-alive HTTP/1.1 connections,
so it takes little CPU from the server. Afterwards it checks the database: every acknowledged submission is
stored exactly once with its ranks, and no prompt has more than `overlap` rankings.

Latency is per request (next and submit alike), measured by the client from sending to the last byte.
The last line of stdout is one JSON object:
    {"cycles_per_s", "p50_ms", "p95_ms", "p99_ms", "lost", "duplicated", "over_overlap", "workers", "database"}

Examples:
    .venv/bin/python bench/labeling_load.py                       # 60 s, SQLite (WAL) in a fresh /tmp file
    .venv/bin/python bench/labeling_load.py --seconds 10 --prompts 2000
    .venv/bin/python bench/labeling_load.py --workers 3 --threads 4 --concurrency 50
    .venv/bin/python bench/labeling_load.py --database-url postgres://bench:bench@127.0.0.1:5432/bench
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROGRESS_EVERY_S = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="labeling_load.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="Measured duration of the load (default 60).")
    parser.add_argument("--warmup", type=float, default=3, help="Seconds of load before measuring (default 3).")
    parser.add_argument("--concurrency", type=int, default=50, help="Simulated labelers at once (default 50).")
    parser.add_argument("--labelers", type=int, default=100, help="Labeler accounts seeded (default 100).")
    parser.add_argument("--prompts", type=int, default=10_000, help="Prompts seeded (default 10000).")
    parser.add_argument("--responses", type=int, default=4, help="Responses per prompt (default 4).")
    parser.add_argument("--overlap", type=int, default=3, help="Labelers per prompt (default 3).")
    parser.add_argument("--max-cycles", type=int, default=200_000, help="Stop after this many cycles at most.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3).")
    parser.add_argument("--threads", type=int, default=1, help="Threads per gunicorn worker, gthread only (default 1).")
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=["gthread", "sync"],
        help="gunicorn worker class (default sync). sync: one request per process at a time, no keep-alive, so any "
        "idle process takes the next request (fair queueing; no GIL shared between threads).",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="Database to use, e.g. postgres://user:pw@127.0.0.1/db (default: a fresh SQLite file under /tmp).",
    )
    parser.add_argument("--conn-max-age", type=int, default=60, help="Django CONN_MAX_AGE for the server (default 60).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (database, server log).")
    args = parser.parse_args(argv)
    if args.labelers < args.concurrency:
        parser.error("--labelers must be at least --concurrency")
    return args


# --- the platform: environment, database, server -------------------------------------------------------------


def platform_env(database_url: str, conn_max_age: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",  # as deployed: no query log
        SECURE_SSL_REDIRECT="0",  # plain HTTP on the loopback
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CONN_MAX_AGE=str(conn_max_age),
        PYTHONPATH=str(REPO),
    )
    return env


def django_setup(env: dict[str, str]) -> None:
    keys = (
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_DEBUG",
        "SECURE_SSL_REDIRECT",
        "ALLOWED_HOSTS",
        "CONN_MAX_AGE",
    )
    os.environ.update({key: env[key] for key in keys})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed(args: argparse.Namespace, slug: str) -> dict:
    """Project, prompts, responses, labelers, memberships and tokens, written with bulk inserts."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Prompt, Response
    from annotation.services.projects import project_create

    call_command("migrate", verbosity=0, interactive=False)
    with transaction.atomic():
        project = project_create(name=f"Load {slug}", slug=slug, overlap=args.overlap, lease_minutes=30)
        texts = [f"[{slug}] prompt {i}: explain how a {i % 97}-sided die works." for i in range(args.prompts)]
        prompts = Prompt.objects.bulk_create(
            [Prompt(project=project, text=t, content_hash=hashlib.sha256(t.encode()).hexdigest()) for t in texts],
            batch_size=2000,
        )
        Response.objects.bulk_create(
            [
                Response(prompt=p, text=f"Answer {j} to prompt {p.pk}.", model_name=f"model-{j}", index=j)
                for p in prompts
                for j in range(args.responses)
            ],
            batch_size=2000,
        )
        unusable = make_password(None)  # token auth only: no slow password hashing
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"{slug}-{i}", password=unusable) for i in range(args.labelers)]
        )
        Membership.objects.bulk_create([Membership(project=project, user=u, role="labeler") for u in users])
        tokens = Token.objects.bulk_create([Token(key=Token.generate_key(), user=u) for u in users])
    return {"project_id": project.pk, "labelers": [(t.user_id, t.key) for t in tokens]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    args: argparse.Namespace, env: dict, port: int, log_path: Path, timeout_s: int = 60
) -> subprocess.Popen:
    """gunicorn on 127.0.0.1:`port`; `timeout_s` is its worker timeout (a request that runs longer is killed)."""
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--worker-class", args.worker_class, "--workers", str(args.workers), "--threads", str(args.threads),
        "--keep-alive", "30", "--backlog", "2048", "--timeout", str(timeout_s), "--log-level", "warning",
        "--preload",  # import Django once, then fork: every worker is ready when the first answers
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError("gunicorn did not start within 30 s")


def server_cpu_s(process: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's arbiter and workers (user + system)."""
    import psutil

    arbiter = psutil.Process(process.pid)
    total = 0.0
    for proc in [arbiter, *arbiter.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- the load: a small kept-alive HTTP/1.1 client on asyncio ------------------------------------------------------


class Connection:
    """One kept-alive HTTP/1.1 connection; just enough protocol for JSON requests and Content-Length/chunked bodies."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, token: str, payload: dict | None = None) -> tuple[int, bytes]:
        body = json.dumps(payload or {}).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(head + body)
        await self.writer.drain()
        return await self._read_response()

    async def _read_response(self) -> tuple[int, bytes]:
        status_line = await self.reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = b""  # 204, or a body delimited by close (not used by this API)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        chunks = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readline()
        await self.reader.readline()
        return b"".join(chunks)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Load:
    """What the clients saw."""

    measure_from: float
    measure_until: float
    max_cycles: int
    cycles: int = 0
    measured_cycles: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # per request, measured window only
    started_at: list[float] = field(default_factory=list)  # wall-clock start (time.time()) of each of those requests
    cycle_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    acknowledged: dict[int, tuple[int, int, dict]] = field(default_factory=dict)  # ranking -> (labeler, prompt, ranks)
    acknowledged_twice: int = 0  # a 201 for a ranking id that was already acknowledged as created
    errors: list[str] = field(default_factory=list)
    exhausted: int = 0  # simulated labelers who got 204 (nothing left)

    def going(self) -> bool:
        return time.monotonic() < self.measure_until and self.cycles < self.max_cycles


async def timed(load: Load, conn: Connection, path: str, token: str, payload: dict | None = None):
    started, wall = time.perf_counter(), time.time()
    status, body = await conn.request(path, token, payload)
    elapsed_ms = (time.perf_counter() - started) * 1000
    load.statuses[status] += 1
    if time.monotonic() >= load.measure_from:
        load.latencies_ms.append(elapsed_ms)
        load.started_at.append(wall)
    return status, body


async def one_cycle(load: Load, conn: Connection, slug: str, labeler: tuple[int, str], rng: random.Random) -> bool:
    labeler_id, token = labeler
    started = time.perf_counter()
    status, body = await timed(load, conn, f"/api/projects/{slug}/tasks/next/", token)
    if status == 204:
        return False
    if status != 200:
        load.errors.append(f"next: {status} {body[:200]!r}")
        return False
    task = json.loads(body)
    ids = [r["id"] for r in task["responses"]]
    ranks = dict(zip(ids, rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
    payload = {"ranks": [{"response_id": rid, "rank": rank} for rid, rank in ranks.items()], "time_spent_s": 3.0}
    status, body = await timed(load, conn, f"/api/tasks/{task['assignment_id']}/submit/", token, payload)
    if status not in (200, 201):
        load.errors.append(f"submit: {status} {body[:200]!r}")
        return True
    ranking_id = json.loads(body)["ranking_id"]
    if status == 201 and ranking_id in load.acknowledged:
        load.acknowledged_twice += 1
    load.acknowledged[ranking_id] = (labeler_id, task["prompt"]["id"], ranks)
    load.cycles += 1
    if time.monotonic() >= load.measure_from:
        load.measured_cycles += 1
        load.cycle_ms.append((time.perf_counter() - started) * 1000)
    return True


async def simulated_labeler(load: Load, port: int, slug: str, accounts: list[tuple[int, str]], seed: int) -> None:
    """Takes turns between its accounts (100 labelers, 50 at the keyboard at once) until time is up."""
    rng, conn = random.Random(seed), Connection(port)
    try:
        turn = 0
        while load.going():
            try:
                if not await one_cycle(load, conn, slug, accounts[turn % len(accounts)], rng):
                    load.exhausted += 1
                    return
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                load.errors.append(f"connection: {exc!r}")
                await conn.close()
            turn += 1
    finally:
        await conn.close()


async def progress(load: Load, started: float) -> None:
    last_cycles, last_t = 0, time.monotonic()
    while load.going():
        await asyncio.sleep(PROGRESS_EVERY_S)
        now = time.monotonic()
        rate = (load.cycles - last_cycles) / (now - last_t)
        last_cycles, last_t = load.cycles, now
        phase = "warm-up" if now < load.measure_from else "measuring"
        print(
            f"[{now - started:5.1f}s {phase}] cycles={load.cycles} ({rate:.0f}/s) errors={len(load.errors)}",
            file=sys.stderr,
            flush=True,
        )


async def run_load(args: argparse.Namespace, port: int, slug: str, labelers: list[tuple[int, str]]) -> Load:
    started = time.monotonic()
    load = Load(started + args.warmup, started + args.warmup + args.seconds, args.max_cycles)
    groups = [labelers[i :: args.concurrency] for i in range(args.concurrency)]
    ticker = asyncio.create_task(progress(load, started))
    await asyncio.gather(*(simulated_labeler(load, port, slug, group, i) for i, group in enumerate(groups)))
    ticker.cancel()
    return load


# --- checks and figures ----------------------------------------------------------------------------------------


def check_stored(load: Load, project_id: int, overlap: int) -> dict[str, int]:
    """Compare what the server acknowledged with what the database holds."""
    from django.db.models import Count

    from annotation.models import Prompt, Ranking, RankingEntry

    rankings = dict(
        ((rid, (labeler, prompt)) for rid, labeler, prompt in Ranking.objects.filter(project_id=project_id)
         .values_list("id", "labeler_id", "prompt_id"))
    )  # fmt: skip
    ranks: dict[int, dict] = {}
    for ranking_id, response_id, rank in RankingEntry.objects.filter(ranking__project_id=project_id).values_list(
        "ranking_id", "response_id", "rank"
    ):
        ranks.setdefault(ranking_id, {})[response_id] = rank
    lost = sum(
        1
        for rid, (labeler, prompt, sent) in load.acknowledged.items()
        if rankings.get(rid) != (labeler, prompt) or ranks.get(rid) != sent
    )
    per_pair = Counter(rankings.values())
    duplicated = sum(n - 1 for n in per_pair.values() if n > 1) + load.acknowledged_twice
    over = (
        Ranking.objects.filter(project_id=project_id, is_current=True)
        .values("prompt")
        .annotate(n=Count("id"))
        .filter(n__gt=overlap)
        .count()
    )
    per_prompt = Counter(prompt for _, prompt in rankings.values())
    counters = Prompt.objects.filter(project_id=project_id).values_list("id", "ranking_count")
    miscounted = sum(1 for pid, count in counters if count != per_prompt.get(pid, 0))
    return {
        "lost": lost,
        "duplicated": duplicated,
        "over_overlap": over,
        "unacknowledged": len(set(rankings) - set(load.acknowledged)),
        "miscounted": miscounted,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="labeling-load-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    database = database_url.split(":", 1)[0]
    env = platform_env(database_url, args.conn_max_age)
    django_setup(env)
    slug = f"load-{int(time.time())}"
    began = time.monotonic()
    seeded = seed(args, slug)
    print(f"seeded {args.prompts} prompts x {args.responses} responses, {args.labelers} labelers in "
          f"{time.monotonic() - began:.1f}s ({database}, {workdir})", flush=True)  # fmt: skip
    from django.db import connections

    connections.close_all()
    port, log_path = free_port(), workdir / "gunicorn.log"
    server = start_server(args, env, port, log_path)
    try:
        print(f"gunicorn {args.worker_class} --workers {args.workers} --threads {args.threads} on 127.0.0.1:{port}; "
              f"{args.concurrency} labelers for {args.warmup:g}s warm-up + {args.seconds:g}s", flush=True)  # fmt: skip
        server_before, client_before = server_cpu_s(server), own_cpu_s()
        load = asyncio.run(run_load(args, port, slug, seeded["labelers"]))
        server_cpu, client_cpu = server_cpu_s(server) - server_before, own_cpu_s() - client_before
    finally:
        stop_server(server)
    checks = check_stored(load, seeded["project_id"], args.overlap)
    server_errors = sum(n for status, n in load.statuses.items() if status >= 500)
    print(f"requests by status: {dict(sorted(load.statuses.items()))}; client errors: {len(load.errors)}")
    for error in load.errors[:5]:
        print(f"  {error}")
    print(
        f"cycle latency (next + submit) p50={percentile(load.cycle_ms, 0.5):.1f}ms "
        f"p95={percentile(load.cycle_ms, 0.95):.1f}ms; unacknowledged rankings stored: {checks['unacknowledged']}; "
        f"prompts whose ranking_count is off: {checks['miscounted']}; labelers out of work: {load.exhausted}"
    )
    cycles = max(load.cycles, 1)
    print(
        f"CPU per cycle (warm-up included): server {server_cpu / cycles * 1000:.1f} ms, "
        f"load generator {client_cpu / cycles * 1000:.1f} ms; machine load average {os.getloadavg()[0]:.2f}"
    )
    result = {
        "cycles_per_s": round(load.measured_cycles / args.seconds, 1),
        "p50_ms": round(percentile(load.latencies_ms, 0.50), 1),
        "p95_ms": round(percentile(load.latencies_ms, 0.95), 1),
        "p99_ms": round(percentile(load.latencies_ms, 0.99), 1),
        "lost": checks["lost"],
        "duplicated": checks["duplicated"],
        "over_overlap": checks["over_overlap"],
        "workers": f"{args.workers}x{args.threads} {args.worker_class}"
        if args.worker_class == "gthread"
        else f"{args.workers} sync",
        "database": database,
    }
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    failed = server_errors or load.errors or checks["lost"] or checks["duplicated"] or checks["over_overlap"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
