"""Agreement benchmark: the full project agreement report of 2,000,000 ranks, read from SQLite.

Seeds a synthetic project in a fresh SQLite database (WAL) under /tmp: by default 100,000 prompts x 4 responses x
5 labelers = 500,000 rankings and 2,000,000 rank rows. Each response has a latent quality (its model's offset plus
noise); each labeler ranks a noisy copy of it, rounded to a grid so that ties occur (labeler 5 is much noisier: a
realistic outlier). Responses are shown in a random order; 2% of rankings carry a flag; rankings spread over two
guideline versions, five categories and eight weeks (a prompt's rankings may straddle a week or the new guideline
version). Seeding runs migrations, then raw `executemany` inserts inside one transaction, in a child process so
that its memory does not count towards the measured peak.

Then, in this process, it times:
  report_s            `agreement_report_get(project=..., n_boot=200)`: everything from the database (alpha at four
                      levels, mean Kendall's W, pairwise agreement both ways, bootstrap intervals, per-labeler table
                      with the outlier test, flags, breakdowns, leaderboard with its bootstrap);
  report_no_ci_s      the same with n_boot=0 (no bootstrap intervals);
  alpha_s             `annotation.agreement.krippendorff_alpha(table, "ordinal")` on the loaded table;
  krippendorff_pkg_s  `krippendorff.alpha(reliability_data=..., level_of_measurement="ordinal")` on the same ranks
                      as a labelers x responses matrix (5 x 400,000); both alphas are printed and must agree.
Alpha timings are the best of --repeat runs; report timings are single runs (the first one includes the database's
cold cache: the file was just written, so it sits in the page cache).
peak_rss_mb is this process's ru_maxrss (getrusage RUSAGE_SELF) right after the two reports: Python, Django, numpy
and the reports' peak, without the seeding child (RUSAGE_CHILDREN) and before the krippendorff package's matrices;
peak_rss_total_mb is the same at the very end.

Targets: report_s <= 10, alpha_s <= krippendorff_pkg_s, peak_rss_mb <= 2048.
The last line of stdout is one JSON object:
    {"report_s", "alpha_s", "krippendorff_pkg_s", "peak_rss_mb", "report_no_ci_s", "rows", ...}

Examples:
    .venv/bin/python bench/agreement.py                        # 100,000 prompts x 4 x 5 (seeding ~1-2 min)
    .venv/bin/python bench/agreement.py --prompts 10000        # a quick run
    .venv/bin/python bench/agreement.py --keep                 # keep /tmp/agreement-bench-*/bench.sqlite3
    .venv/bin/python bench/agreement.py --database /tmp/agreement-bench-x/bench.sqlite3   # re-use a seeded file
    .venv/bin/python bench/agreement.py --profile              # also print the report's cProfile top 25
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
SLUG = "agreement-bench"
MODELS = ("model-strong", "model-good", "model-fair", "model-weak")
MODEL_OFFSET = (0.6, 0.3, 0.0, -0.3)
CATEGORIES = ("qa", "generation", "summarization", "chat", "coding")
WEEKS = 8
CHUNK = 10_000  # prompts generated and inserted per step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="agreement.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=100_000, help="Prompts seeded (default 100000).")
    parser.add_argument("--responses", type=int, default=4, help="Responses per prompt, at most 4 (default 4).")
    parser.add_argument("--labelers", type=int, default=5, help="Labelers, each ranking every prompt (default 5).")
    parser.add_argument("--n-boot", type=int, default=200, help="Bootstrap resamples of the report (default 200).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each alpha computation; best kept (default 3).")
    parser.add_argument("--database", type=Path, help="Use this already seeded SQLite file instead of seeding one.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory and its database.")
    parser.add_argument("--profile", action="store_true", help="Print a cProfile of the report (top 25, cumulative).")
    parser.add_argument("--seed-into", type=Path, help=argparse.SUPPRESS)  # internal: the seeding child process
    args = parser.parse_args(argv)
    if not 2 <= args.responses <= len(MODELS):
        parser.error(f"--responses must be between 2 and {len(MODELS)}")
    if args.labelers < 2:
        parser.error("--labelers must be at least 2")
    return args


def database_env(path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{path}",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",  # as deployed: no query log
        PYTHONPATH=str(REPO),
    )
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG")})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- seeding (child process) ----------------------------------------------------------------------------------


def _insert_sql(model, fields: list[str]) -> str:
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    marks = ", ".join("?" * len(fields))
    return f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({marks})'


def _dense_ranks(scores: "np.ndarray") -> "np.ndarray":  # noqa: F821 - numpy is imported lazily
    """Dense ranks (1 = highest score, equal scores share a rank) of every row of a (rankings, K) array."""
    import numpy as np

    order = np.argsort(-scores, axis=1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=1)
    steps = np.concatenate([np.ones((len(scores), 1), dtype=np.int64), (np.diff(ordered, axis=1) != 0)], axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.cumsum(steps, axis=1), axis=1)
    return ranks


def seed(args: argparse.Namespace) -> None:
    """The synthetic project, written with raw executemany inside one transaction (see the module docstring)."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Membership, Prompt, Ranking, RankingEntry, Response
    from annotation.services.projects import guideline_publish, project_create

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    n_prompts, k, n_labelers = args.prompts, args.responses, args.labelers
    rng = np.random.default_rng(0)
    noise = np.linspace(0.6, 0.9, n_labelers)
    noise[-1] = 1.6  # one much noisier labeler: the outlier test should flag them
    with connection.cursor() as pragma:
        pragma.execute("PRAGMA synchronous=OFF")  # a throw-away file: no fsync while seeding
    with transaction.atomic():
        project = project_create(name="Agreement benchmark", slug=SLUG, overlap=n_labelers)
        guideline_publish(project=project, text="# Guidelines v2\nRank by correctness first.")
        unusable = make_password(None)
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"bench-labeler-{i + 1}", password=unusable) for i in range(n_labelers)]
        )
        Membership.objects.bulk_create([Membership(project=project, user=u, role="labeler") for u in users])
        user_ids = np.array([u.pk for u in users])
        cursor = connection.connection.cursor()  # the raw sqlite3 cursor: no per-row wrapper overhead
        prompt_sql = _insert_sql(
            Prompt,
            ["id", "project", "text", "category", "source", "external_id", "metadata", "split", "round",
             "content_hash", "is_gold", "ranking_count", "is_complete", "created_at"],
        )  # fmt: skip
        response_sql = _insert_sql(Response, ["id", "prompt", "text", "model_name", "index", "metadata", "created_at"])
        ranking_sql = _insert_sql(
            Ranking,
            ["id", "project", "prompt", "labeler", "version", "is_current", "guideline_version", "num_responses",
             "shown_order", "flags", "rationale", "time_spent_s", "source", "metadata", "created_at"],
        )  # fmt: skip
        entry_sql = _insert_sql(RankingEntry, ["ranking", "response", "rank", "shown_position", "num_responses"])
        base = {
            table: (cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').fetchone()[0] + 1)
            for table in (Prompt._meta.db_table, Response._meta.db_table, Ranking._meta.db_table)
        }
        prompt_base, response_base, ranking_base = base.values()
        start_day = np.datetime64("2026-01-05")  # a Monday
        for first in range(0, n_prompts, CHUNK):
            p = np.arange(first, min(first + CHUNK, n_prompts))
            n = len(p)
            prompt_id = prompt_base + p
            day = start_day + (p * WEEKS * 7 // n_prompts)  # prompts arrive over WEEKS weeks
            created = np.char.add(day.astype(str), " 09:00:00")
            cursor.executemany(
                prompt_sql,
                (
                    (int(pid), project.pk, f"Synthetic prompt {i}: explain topic {i % 977}.", CATEGORIES[i % 5],
                     "bench", "", "{}", "", 1, f"{i:064x}", 0, n_labelers, 1, str(c))
                    for pid, i, c in zip(prompt_id.tolist(), p.tolist(), created.tolist(), strict=True)
                ),
            )  # fmt: skip
            response_id = response_base + p[:, None] * k + np.arange(k)  # (n, k); model j at index j
            cursor.executemany(
                response_sql,
                (
                    (int(response_id[row, j]), int(prompt_id[row]), f"Answer {j} to prompt {p[row]}.", MODELS[j], j,
                     "{}", str(created[row]))
                    for row in range(n)
                    for j in range(k)
                ),
            )  # fmt: skip
            quality = np.asarray(MODEL_OFFSET[:k]) + rng.normal(size=(n, k))
            scores = quality[:, None, :] + rng.normal(size=(n, n_labelers, k)) * noise[None, :, None]
            ranks = _dense_ranks(np.round(scores * 2.0).reshape(n * n_labelers, k))  # grid 0.5: ties happen
            shown = np.argsort(rng.random((n * n_labelers, k)), axis=1)  # shown[r, pos] = response index
            position = np.argsort(shown, axis=1)
            ranking_row = np.arange(n * n_labelers)
            ranking_id = ranking_base + first * n_labelers + ranking_row
            prompt_of = np.repeat(prompt_id, n_labelers)
            labeler_of = np.tile(user_ids, n)
            shown_ids = response_id[ranking_row // n_labelers][ranking_row[:, None], shown]
            flagged = rng.random(n * n_labelers) < 0.02
            seconds = np.round(rng.lognormal(np.log(40.0), 0.5, n * n_labelers), 1)
            # each labeler ranks a prompt 0-3 days after it arrived: a prompt's rankings may straddle a week
            # boundary and the publication of guideline v2 (half-way), as in a real project
            ranked_on = np.repeat(day, n_labelers) + rng.integers(0, 4, n * n_labelers)
            guideline = np.where(ranked_on >= start_day + WEEKS * 7 // 2, 2, 1)
            ranked_at = np.char.add(ranked_on.astype(str), " 15:30:00")
            cursor.executemany(
                ranking_sql,
                (
                    (rid, project.pk, pid, lid, 1, 1, g, k, json.dumps(order), '["unsafe"]' if f else "[]", "", s,
                     "platform", "{}", c)
                    for rid, pid, lid, g, order, f, s, c in zip(
                        ranking_id.tolist(), prompt_of.tolist(), labeler_of.tolist(), guideline.tolist(),
                        shown_ids.tolist(), flagged.tolist(), seconds.tolist(), ranked_at.tolist(),
                        strict=True,
                    )
                ),
            )  # fmt: skip
            entry_response = response_id[ranking_row // n_labelers]  # (rankings, k)
            cursor.executemany(
                entry_sql,
                zip(
                    np.repeat(ranking_id, k).tolist(), entry_response.ravel().tolist(), ranks.ravel().tolist(),
                    position.ravel().tolist(), [k] * (n * n_labelers * k),
                    strict=True,
                ),
            )  # fmt: skip
            done = first + n
            progress(
                f"seeded {done:,}/{n_prompts:,} prompts ({done * n_labelers * k:,} ranks) "
                f"in {time.perf_counter() - started:.0f} s"
            )
    with connection.cursor() as analyze:
        analyze.execute("ANALYZE")
    progress(f"seeding done in {time.perf_counter() - started:.0f} s")


# --- measuring (this process) ---------------------------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def best_of(repeat: int, function) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    return best, value


def measure(args: argparse.Namespace) -> dict:
    import krippendorff
    import numpy as np

    from annotation import agreement as ag
    from annotation.models import Project, RankingEntry
    from annotation.services.agreement import agreement_report_get, rankings_load

    project = Project.objects.get(slug=SLUG)
    rows = RankingEntry.objects.filter(ranking__project=project).count()
    progress(f"measuring on {rows:,} rank rows")

    started = time.perf_counter()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report = profiler.runcall(agreement_report_get, project=project, n_boot=args.n_boot)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        report = agreement_report_get(project=project, n_boot=args.n_boot)
    report_s = time.perf_counter() - started
    progress(f"report (n_boot={args.n_boot}): {report_s:.2f} s")
    started = time.perf_counter()
    agreement_report_get(project=project, n_boot=0)
    report_no_ci_s = time.perf_counter() - started
    progress(f"report (n_boot=0): {report_no_ci_s:.2f} s")
    peak_rss_mb = rss_mb()

    table = rankings_load(project=project).table
    alpha_s, ours = best_of(args.repeat, lambda: ag.krippendorff_alpha(table, "ordinal"))
    matrix = np.full((table.n_labelers, table.n_responses), np.nan)
    matrix[table.labeler, table.response] = table.rank
    package_s, theirs = best_of(
        args.repeat, lambda: krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")
    )
    progress(
        f"alpha ordinal: ours {ours:.6f} in {alpha_s:.3f} s; krippendorff package {theirs:.6f} in {package_s:.3f} s "
        f"(matrix {matrix.shape[0]} x {matrix.shape[1]:,})"
    )
    if not np.isclose(ours, theirs, rtol=0, atol=1e-9):
        raise SystemExit(f"alpha mismatch: ours {ours!r}, krippendorff package {theirs!r}")
    summary = {key: report.get(key) for key in ("alpha_ordinal", "kendall_w_mean", "pairwise_agreement_ties_dropped")}
    summary["outliers"] = [row["username"] for row in report["labelers"] if row["outlier"]]
    summary["leaderboard"] = [row["model"] for row in report["leaderboard"]]
    progress(f"report figures: {json.dumps(summary)}")
    return {
        "report_s": round(report_s, 3),
        "alpha_s": round(alpha_s, 4),
        "krippendorff_pkg_s": round(package_s, 4),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "report_no_ci_s": round(report_no_ci_s, 3),
        "peak_rss_total_mb": round(rss_mb(), 1),
        "rows": rows,
        "n_boot": args.n_boot,
        "alpha_ordinal": report.get("alpha_ordinal"),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.seed_into:
        django_setup(database_env(args.seed_into))
        seed(args)
        return
    workdir = None
    database = args.database
    if database is not None and not database.exists():
        raise SystemExit(f"No such database: {database}")
    try:
        if database is None:
            workdir = Path(tempfile.mkdtemp(prefix="agreement-bench-", dir="/tmp"))
            database = workdir / "bench.sqlite3"
            progress(f"seeding {args.prompts:,} prompts x {args.responses} x {args.labelers} labelers into {database}")
            sizes = [f"--{name}={getattr(args, name)}" for name in ("prompts", "responses", "labelers")]
            command = [sys.executable, str(Path(__file__).resolve()), "--seed-into", str(database), *sizes]
            subprocess.run(command, env=database_env(database), cwd=REPO, check=True)
        django_setup(database_env(database))
        result = measure(args)
    finally:
        if workdir is not None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir is not None:
            progress(f"kept {workdir}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
