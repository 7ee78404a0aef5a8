"""Export benchmark: 250,000 rankings x 4 responses -> 1,500,000 preference pairs (strategy `all`), from SQLite.

Seeds a synthetic project in a fresh SQLite database under /tmp (in a child process, so seeding does not count
towards any measured peak): by default 62,500 prompts (~30 random words each) x 4 responses (~500 characters each)
x 4 labelers, each ranking every prompt strictly (no ties) -> 250,000 rankings, 1,000,000 rank rows, 6 pairs per
ranking = 1,500,000 pairs. Seeding runs migrations, then raw `executemany` inserts inside one transaction.

Then, each in a fresh child process (`python bench/export.py --measure FORMAT ...`):
  jsonl    `preference_export_create(fmt="jsonl")` with the defaults (strategy all, 10% test split with
           near-duplicate grouping, full columns, sha256 of the files, export_meta.json), wall time;
  parquet  the same with fmt="parquet";
  orjson   the practical limit: the rows of the JSONL export, read back in batches of 20,000 and parsed into the
           same dicts (not timed), then only `orjson.dumps(row)` + newline + file write are timed.
rows/s = pairs written / seconds; `os.sync()` runs before each step, so no step pays for the previous step's
writeback (none of them fsyncs its own files: all three are timed up to their last write() returning).
Peak RSS is each child's ru_maxrss (getrusage RUSAGE_SELF, KiB on Linux) at its end: Python, Django, numpy,
pyarrow and the export's own peak; peak_rss_mb is the larger of the two exports'.

Targets: jsonl_rows_per_s >= 50% of orjson_limit_rows_per_s, peak_rss_mb <= 500.
The last line of stdout is one JSON object:
    {"jsonl_rows_per_s", "parquet_rows_per_s", "orjson_limit_rows_per_s", "ratio_to_limit", "peak_rss_mb", ...}

Examples:
    .venv/bin/python bench/export.py                      # 62,500 prompts x 4 x 4 (seeding ~1-2 min)
    .venv/bin/python bench/export.py --prompts 5000       # a quick run
    .venv/bin/python bench/export.py --keep               # keep /tmp/export-bench-*/ (database and exports)
    .venv/bin/python bench/export.py --database /tmp/export-bench-x/bench.sqlite3   # re-use a seeded file
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLUG = "export-bench"
CHUNK = 5_000  # prompts generated and inserted per step
VOCABULARY = 3000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="export.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=62_500, help="Prompts seeded (default 62500).")
    parser.add_argument("--labelers", type=int, default=4, help="Labelers, each ranking every prompt (default 4).")
    parser.add_argument("--response-chars", type=int, default=500, help="Characters per response (default ~500).")
    parser.add_argument("--database", type=Path, help="Use this already seeded SQLite file instead of seeding one.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (database, exports).")
    parser.add_argument("--seed-into", type=Path, help=argparse.SUPPRESS)  # internal: the seeding child
    parser.add_argument("--measure", choices=["jsonl", "parquet", "orjson"], help=argparse.SUPPRESS)  # internal
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)  # internal: the measuring child's directory
    return parser.parse_args(argv)


def database_env(path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=f"sqlite:///{path}", DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="0",
               PYTHONPATH=str(REPO))  # fmt: skip
    return env


def django_setup() -> None:
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- seeding (child process) ----------------------------------------------------------------------------------


def _insert_sql(model, fields: list[str]) -> str:
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    return f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({", ".join("?" * len(fields))})'


def _texts(rng, vocabulary: list[str], n: int, words: int) -> list[str]:
    picks = rng.integers(0, len(vocabulary), size=(n, words))
    return [" ".join(vocabulary[i] for i in row) for row in picks.tolist()]


def seed(args: argparse.Namespace) -> None:
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Membership, Prompt, Ranking, RankingEntry, Response
    from annotation.services.projects import project_create

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    rng = np.random.default_rng(0)
    vocabulary = [f"{chr(97 + i % 26)}{'aeiou'[i % 5]}{i:x}" for i in range(VOCABULARY)]  # ~5 chars + a space
    response_words = max(1, args.response_chars // 6)
    n_prompts, k, n_labelers = args.prompts, 4, args.labelers
    with connection.cursor() as pragma:
        pragma.execute("PRAGMA synchronous=OFF")
    with transaction.atomic():
        project = project_create(name="Export benchmark", slug=SLUG, overlap=n_labelers)
        unusable = make_password(None)
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"bench-labeler-{i + 1}", password=unusable) for i in range(n_labelers)]
        )
        Membership.objects.bulk_create([Membership(project=project, user=u, role="labeler") for u in users])
        cursor = connection.connection.cursor()
        prompt_sql = _insert_sql(Prompt, ["id", "project", "text", "category", "source", "external_id", "metadata",
                                          "split", "round", "content_hash", "is_gold", "ranking_count", "is_complete",
                                          "created_at"])  # fmt: skip
        response_sql = _insert_sql(Response, ["id", "prompt", "text", "model_name", "index", "metadata", "created_at"])
        ranking_sql = _insert_sql(Ranking, ["id", "project", "prompt", "labeler", "version", "is_current",
                                            "guideline_version", "num_responses", "shown_order", "flags", "rationale",
                                            "source", "metadata", "created_at"])  # fmt: skip
        entry_sql = _insert_sql(RankingEntry, ["ranking", "response", "rank", "shown_position", "num_responses"])
        now = "2026-01-05 12:00:00"
        for first in range(0, n_prompts, CHUNK):
            p = list(range(first, min(first + CHUNK, n_prompts)))
            prompts = _texts(rng, vocabulary, len(p), 30)
            cursor.executemany(prompt_sql, (
                (i + 1, project.pk, text, ("qa", "chat", "code")[i % 3], "bench", "", "{}", "", 1, f"{i:064x}", 0,
                 n_labelers, 1, now) for i, text in zip(p, prompts, strict=True)
            ))  # fmt: skip
            responses = _texts(rng, vocabulary, len(p) * k, response_words)
            cursor.executemany(response_sql, (
                (i * k + j + 1, i + 1, responses[row * k + j], f"model-{j}", j, "{}", now)
                for row, i in enumerate(p) for j in range(k)
            ))  # fmt: skip
            ranks = np.argsort(rng.random((len(p) * n_labelers, k)), axis=1) + 1  # strict: a permutation of 1..k
            rows, entries = [], []
            for row, i in enumerate(p):
                shown = [i * k + j + 1 for j in range(k)]
                for labeler in range(n_labelers):
                    ranking_id = i * n_labelers + labeler + 1
                    rows.append((ranking_id, project.pk, i + 1, users[labeler].pk, 1, 1, 1, k, json.dumps(shown),
                                 "[]", "", "platform", "{}", now))  # fmt: skip
                    rank = ranks[row * n_labelers + labeler].tolist()
                    entries += [(ranking_id, shown[j], rank[j], j, k) for j in range(k)]
            cursor.executemany(ranking_sql, rows)
            cursor.executemany(entry_sql, entries)
            progress(f"seeded {first + len(p):,}/{n_prompts:,} prompts in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as analyze:
        analyze.execute("ANALYZE")
    progress(f"seeding done in {time.perf_counter() - started:.0f} s")


# --- measuring (child processes) ------------------------------------------------------------------------------


def measure_export(fmt: str, out: Path) -> dict:
    from annotation.models import Project
    from annotation.services.exports import preference_export_create

    project = Project.objects.get(slug=SLUG)
    started = time.perf_counter()
    result = preference_export_create(project=project, out=out, fmt=fmt)
    seconds = time.perf_counter() - started
    rows = result.meta["counts"]["pairs"]
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": rss_mb(),
            "bytes": sum((out / name).stat().st_size for name in result.files)}  # fmt: skip


def measure_orjson(source: Path) -> dict:
    """Only orjson.dumps + write of the exporter's rows, parsed back from its JSONL in batches (not timed)."""
    import orjson

    timed, rows = 0.0, 0
    with (source / "orjson.jsonl").open("wb") as target:
        for name in ("train.jsonl", "test.jsonl"):
            with (source / name).open("rb") as handle:
                while batch := [orjson.loads(line) for line in handle.readlines(20_000 * 1300)]:
                    started = time.perf_counter()
                    target.write(b"".join([orjson.dumps(row) + b"\n" for row in batch]))
                    timed += time.perf_counter() - started
                    rows += len(batch)
        started = time.perf_counter()
        target.flush()
        timed += time.perf_counter() - started
    return {"rows": rows, "seconds": timed, "rows_per_s": rows / timed, "peak_rss_mb": rss_mb()}


def child(args: list[str], env: dict[str, str]) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    sys.stderr.write(output.stderr)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.seed_into or args.measure:
        django_setup()
        if args.seed_into:
            seed(args)
        else:
            result = measure_orjson(args.out) if args.measure == "orjson" else measure_export(args.measure, args.out)
            print(json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    database = args.database or work / "bench.sqlite3"
    env = database_env(database)
    try:
        if args.database is None:
            progress(f"seeding {database} ...")
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--seed-into", str(database),
                            "--prompts", str(args.prompts), "--labelers", str(args.labelers),
                            "--response-chars", str(args.response_chars)], env=env, check=True)  # fmt: skip
        figures = {}
        for fmt in ("jsonl", "parquet"):
            os.sync()  # each measurement starts without the previous step's dirty pages to write back
            progress(f"exporting {fmt} ...")
            figures[fmt] = child(["--measure", fmt, "--out", str(work / fmt)], env)
            progress(f"  {json.dumps(figures[fmt])}")
            if fmt == "parquet" and not args.keep:
                shutil.rmtree(work / fmt)
        os.sync()
        progress("orjson limit ...")
        figures["orjson"] = child(["--measure", "orjson", "--out", str(work / "jsonl")], env)
        progress(f"  {json.dumps(figures['orjson'])}")
        result = {
            "jsonl_rows_per_s": round(figures["jsonl"]["rows_per_s"]),
            "parquet_rows_per_s": round(figures["parquet"]["rows_per_s"]),
            "orjson_limit_rows_per_s": round(figures["orjson"]["rows_per_s"]),
            "ratio_to_limit": round(figures["jsonl"]["rows_per_s"] / figures["orjson"]["rows_per_s"], 3),
            "peak_rss_mb": round(max(figures["jsonl"]["peak_rss_mb"], figures["parquet"]["peak_rss_mb"]), 1),
            "rows": figures["jsonl"]["rows"],
            "jsonl_s": round(figures["jsonl"]["seconds"], 2),
            "parquet_s": round(figures["parquet"]["seconds"], 2),
            "orjson_s": round(figures["orjson"]["seconds"], 2),
            "jsonl_peak_rss_mb": round(figures["jsonl"]["peak_rss_mb"], 1),
            "parquet_peak_rss_mb": round(figures["parquet"]["peak_rss_mb"], 1),
            "prompts": args.prompts,
            "labelers": args.labelers,
        }
        print(json.dumps(result))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
