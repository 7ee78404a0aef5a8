"""Import load benchmark: a large prompt import while labelers submit rankings, against a real gunicorn server.

Generates a JSONL file (default 100,000 prompts x 4 responses, about 100 MB), serves the platform twice over one
fresh SQLite (WAL) database: a labeling server (gunicorn, 3 sync workers) and an import server (1 sync worker, so
the importing process is known). `--labelers` simulated labelers loop next -> submit on the labeling server with
API tokens while a manager uploads the file to POST /api/projects/{slug}/import/ on the import server. The labelers
start before the upload and stop when the import has answered.

Measured: the import's wall time; every labeler request's latency (next and submit) from its start to the import's
answer; the import worker's peak RSS over its RSS just before the upload (Linux: VmHWM - VmRSS, read from /proc);
and `lost`: submits that failed, or were acknowledged and are not stored with their ranks.
The last line of stdout is one JSON object:
    {"import_s", "labeler_p99_ms", "labeler_max_ms", "peak_rss_mb", "lost", "prompts", "file_mb", "submits"}

Examples:
    .venv/bin/python bench/import_load.py                      # 100k prompts, several minutes
    .venv/bin/python bench/import_load.py --prompts 10000      # a quick run
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import labeling_load as ll  # noqa: E402  (the same server, client and checks as the labeling benchmark)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="import_load.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=100_000, help="Prompts in the imported file (default 100000).")
    parser.add_argument("--responses", type=int, default=4, help="Responses per imported prompt (default 4).")
    parser.add_argument(
        "--labelers", type=int, default=20, help="Simulated labelers submitting meanwhile (default 20)."
    )
    parser.add_argument("--workers", type=int, default=3, help="Labeling server's gunicorn workers (default 3).")
    parser.add_argument(
        "--seed-prompts",
        type=int,
        default=20_000,
        help="Prompts seeded for the labelers to work on during the import (default 20000): the imported ones stay "
        "invisible until the import commits.",
    )
    parser.add_argument(
        "--baseline-s", type=float, default=20, help="Seconds of labeling alone before the import (default 20)."
    )
    parser.add_argument(
        "--pause-ratio", type=float, default=None, help="The import server's IMPORT_PAUSE_RATIO (default: settings)."
    )
    parser.add_argument("--think-ms", type=float, default=200, help="Pause between a labeler's cycles (default 200).")
    parser.add_argument("--timeout", type=float, default=1800, help="Give up on the import after this many seconds.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (database, file, logs).")
    return parser.parse_args(argv)


def write_file(path: Path, prompts: int, responses: int, seed: int = 0) -> int:
    """About 1 KB per prompt with 4 responses: chat-like text, a model name and a little metadata per response."""
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "model",
        "answer",
        "because",
        "which",
        "helps",
        "explain",
        "careful",
        "detail",
        "step",
        "result",
        "likely",
        "check",
    ]
    with path.open("w") as out:
        for i in range(prompts):
            text = f"Question {i}: " + " ".join(rng.choices(words, k=18))
            row = {
                "prompt": text,
                "responses": [
                    {
                        "text": f"Answer {j}: " + " ".join(rng.choices(words, k=20)),
                        "model": f"policy-{j}",
                        "metadata": {"temperature": 0.7, "tokens": 40 + j},
                    }
                    for j in range(responses)
                ],  # fmt: skip
                "category": rng.choice(["qa", "code", "chat"]),
                "id": f"ext-{i}",
            }
            out.write(json.dumps(row) + "\n")
    return path.stat().st_size


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def import_worker_pid(server) -> int:
    import psutil

    children = psutil.Process(server.pid).children()
    if len(children) != 1:
        raise RuntimeError(f"expected one import worker, found {len(children)}")
    return children[0].pid


def seed_manager(slug: str) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Project
    from annotation.services.projects import membership_set

    user = get_user_model().objects.create(username=f"{slug}-manager", is_staff=True)
    membership_set(project=Project.objects.get(slug=slug), user=user, role=Membership.Role.MANAGER)
    return Token.objects.create(user=user).key


def upload(port: int, slug: str, token: str, path: Path, timeout: float) -> tuple[int, bytes]:
    """The multipart upload, streamed from the file with http.client (no third-party client)."""
    import http.client

    boundary = "----import-load-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nprompts\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.putrequest("POST", f"/api/projects/{slug}/import/")
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    return response.status, response.read()


async def labelers_while(load: ll.Load, args, port: int, slug: str, labelers, done) -> None:
    """The simulated labelers, each with its own account and connection, until `done()`."""

    async def one(account, seed: int) -> None:
        rng, conn = random.Random(seed), ll.Connection(port)
        try:
            while not done():
                try:
                    if not await ll.one_cycle(load, conn, slug, account, rng):
                        load.exhausted += 1
                        return
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    load.errors.append(f"connection: {exc!r}")
                    await conn.close()
                await asyncio.sleep(args.think_ms / 1000 * rng.uniform(0.5, 1.5))
        finally:
            await conn.close()

    await asyncio.gather(*(one(account, i) for i, account in enumerate(labelers)))


async def run(args, ports, slug, labelers, token, path, worker_pid) -> tuple[ll.Load, ll.Load, dict]:
    labeling_port, import_port = ports
    # the same labelers alone first: what the machine gives them without an import
    baseline = ll.Load(measure_from=0, measure_until=float("inf"), max_cycles=10**9)
    until = time.monotonic() + args.baseline_s
    await labelers_while(baseline, args, labeling_port, slug, labelers, lambda: time.monotonic() >= until)
    load = ll.Load(measure_from=0, measure_until=float("inf"), max_cycles=10**9)
    baseline_kb = rss_kb(worker_pid, "VmRSS")
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    importing = loop.run_in_executor(None, upload, import_port, slug, token, path, args.timeout)
    await asyncio.sleep(0)
    labeling = asyncio.create_task(labelers_while(load, args, labeling_port, slug, labelers, importing.done))
    status, body = await importing
    import_s = time.monotonic() - started
    peak_kb = rss_kb(worker_pid, "VmHWM")
    await labeling
    return (
        baseline,
        load,
        {
            "status": status,
            "body": body,
            "import_s": import_s,
            "peak_rss_mb": (peak_kb - baseline_kb) / 1024,
        },
    )


def phase_latencies(load: ll.Load, staging_from: float, staging_until: float) -> dict[str, list[float]]:
    """Labeler latencies by the phase of the import their request started in: validation (reading the file, no
    writes), staging (short write transactions) and the rest (commit, answer)."""
    phases: dict[str, list[float]] = {"validating": [], "staging": [], "committing": []}
    for at, ms in zip(load.started_at, load.latencies_ms, strict=True):
        name = "validating" if at < staging_from else "staging" if at <= staging_until else "committing"
        phases[name].append(ms)
    return phases


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="import-load-"))
    env = ll.platform_env(f"sqlite:///{workdir / 'bench.sqlite3'}", conn_max_age=60)
    ll.django_setup(env)
    slug = f"import-{int(time.time())}"
    began = time.monotonic()
    path = workdir / "prompts.jsonl"
    size = write_file(path, args.prompts, args.responses)
    print(f"wrote {args.prompts} prompts x {args.responses} responses: {size / 1e6:.1f} MB in "
          f"{time.monotonic() - began:.1f}s ({workdir})", flush=True)  # fmt: skip
    seed_args = argparse.Namespace(prompts=args.seed_prompts, responses=4, overlap=3, labelers=args.labelers)
    seeded = ll.seed(seed_args, slug)
    token = seed_manager(slug)
    from django.db import connections

    connections.close_all()
    server_args = argparse.Namespace(worker_class="sync", workers=args.workers, threads=1)
    import_args = argparse.Namespace(worker_class="sync", workers=1, threads=1)
    ports = ll.free_port(), ll.free_port()
    labeling_server = ll.start_server(server_args, env, ports[0], workdir / "labeling.log")
    import_env = dict(env, IMPORT_MAX_BYTES=str(max(size + 1, 200 * 1024 * 1024)))
    if args.pause_ratio is not None:
        import_env["IMPORT_PAUSE_RATIO"] = str(args.pause_ratio)
    import_server = None
    try:
        import_server = ll.start_server(import_args, import_env, ports[1], workdir / "import.log", int(args.timeout))
        pid = import_worker_pid(import_server)
        print(f"labeling server :{ports[0]} ({args.workers} sync workers), import server :{ports[1]} (worker {pid}); "
              f"{args.labelers} labelers, think {args.think_ms:g} ms", flush=True)  # fmt: skip
        baseline, load, imported = asyncio.run(run(args, ports, slug, seeded["labelers"], token, path, pid))
    finally:
        ll.stop_server(labeling_server)
        if import_server is not None:
            ll.stop_server(import_server)
    checks = ll.check_stored(load, seeded["project_id"], 3)
    from annotation.models import ImportBatch, Prompt

    batch = ImportBatch.objects.order_by("-pk").first()
    phases = phase_latencies(load, batch.created_at.timestamp(), batch.finished_at.timestamp())

    visible = Prompt.objects.filter(project_id=seeded["project_id"]).count()
    failed_submits = sum(1 for error in load.errors if error.startswith("submit"))
    lost = checks["lost"] + failed_submits
    body = imported["body"][:500].decode(errors="replace")
    print(f"import: HTTP {imported['status']} in {imported['import_s']:.1f}s: {body}")
    print(f"labeler requests: {len(load.latencies_ms)} ({load.cycles} submits), by status "
          f"{dict(sorted(load.statuses.items()))}; errors {len(load.errors)}; prompts visible {visible}")  # fmt: skip
    for error in load.errors[:5]:
        print(f"  {error}")
    for name, values in {f"alone for {args.baseline_s:g}s": baseline.latencies_ms, **phases}.items():
        p99, worst = ll.percentile(values, 0.99), max(values, default=float("nan"))
        print(f"labelers {name}: p99 {p99:.0f} ms, max {worst:.0f} ms over {len(values)} requests")
    result = {
        "import_s": round(imported["import_s"], 1),
        "labeler_p99_ms": round(ll.percentile(load.latencies_ms, 0.99), 1),
        "labeler_max_ms": round(max(load.latencies_ms, default=float("nan")), 1),
        "peak_rss_mb": round(imported["peak_rss_mb"], 1),
        "lost": lost,
        "prompts": args.prompts,
        "file_mb": round(size / 1e6, 1),
        "submits": load.cycles,
        "baseline_p99_ms": round(ll.percentile(baseline.latencies_ms, 0.99), 1),
        "baseline_max_ms": round(max(baseline.latencies_ms, default=float("nan")), 1),
        "staging_max_ms": round(max(phases["staging"], default=float("nan")), 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the machine (2 cores here) skews the figures
    }
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    ok = imported["status"] == 201 and visible == args.seed_prompts + args.prompts and not lost and not load.errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
