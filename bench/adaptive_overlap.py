"""Adaptive overlap benchmark: fixed overlap 5 vs adaptive (2 -> up to 5), through the real queue and submit services.

Simulated labelers rank prompts whose true order is known. Each prompt has 4 responses with true qualities
0, 1, 2, 3 (gaps of 1); a labeler ranks the responses by quality plus Gaussian noise of their own standard deviation
(drawn once per labeler from --noise-low..--noise-high), and one scripted bad labeler ranks at random. Labelers take
turns in random order through `assignment_next` and `ranking_submit` on a fresh SQLite database (the platform's
own services, leases and completion rule), until nobody gets work. Both projects get the same prompts and labelers.

Figures (last stdout line, one JSON object):
  labels_fixed, labels_adaptive       rankings stored
  labels_saved_pct                    100 * (1 - adaptive / fixed)
  consensus_accuracy_fixed/_adaptive  share of prompts whose consensus top-1 (lowest mean rank) is the true best
  alpha_fixed, alpha_adaptive         Krippendorff's alpha (ordinal, `krippendorff` package) over all rankings
Target: labels_saved_pct >= 30 with consensus_accuracy_adaptive within 0.01 of consensus_accuracy_fixed.

The rule's threshold (--agreement, the project's adaptive_agreement) was chosen on this simulation with seed 1
(see docs/benchmarks.md); the figures recorded there use seed 0.

Examples:
    .venv/bin/python bench/adaptive_overlap.py                    # 300 prompts, 10 labelers (~1-2 min)
    .venv/bin/python bench/adaptive_overlap.py --prompts 100 --agreement 0.75 --seed 1
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_RESPONSES = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--labelers", type=int, default=10, help="Including the one bad labeler.")
    parser.add_argument("--noise-low", type=float, default=0.5)
    parser.add_argument("--noise-high", type=float, default=1.5)
    parser.add_argument("--agreement", type=float, default=0.6, help="adaptive_agreement of the adaptive project.")
    parser.add_argument("--min", dest="overlap_min", type=int, default=2)
    parser.add_argument("--max", dest="overlap_max", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def django_setup(database: Path) -> None:
    os.environ.update(DATABASE_URL=f"sqlite:///{database}", DJANGO_SETTINGS_MODULE="config.settings",
                      DJANGO_DEBUG="0")  # fmt: skip
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-secret")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def simulate(args, mode: str, world: dict) -> dict:
    import numpy as np
    from django.contrib.auth import get_user_model

    from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry, Response
    from annotation.services.assignments import assignment_next
    from annotation.services.rankings import ranking_submit

    rng = np.random.default_rng(args.seed + 1)  # turns and perception noise; the world is shared
    project = Project.objects.create(
        name=f"adaptive-{mode}", slug=f"adaptive-{mode}", overlap=args.overlap_max, overlap_mode=mode,
        overlap_min=args.overlap_min, adaptive_agreement=args.agreement, lease_minutes=60,
    )  # fmt: skip
    quality: dict[int, float] = {}
    best: dict[int, int] = {}
    for p in range(args.prompts):
        prompt = Prompt.objects.create(project=project, text=f"prompt {p}", content_hash=f"{mode}-{p}")
        order = world["orders"][p]  # response index -> true quality (the best has N_RESPONSES - 1)
        for i in range(N_RESPONSES):
            response = Response.objects.create(prompt=prompt, text=f"answer {i}", index=i, model_name=f"m{i}")
            quality[response.pk] = float(order[i])
            if order[i] == N_RESPONSES - 1:
                best[prompt.pk] = response.pk
    users = []
    for i, sd in enumerate(world["noise"]):
        user = get_user_model().objects.create(username=f"{mode}-labeler-{i}")
        Membership.objects.create(project=project, user=user, role="labeler")
        users.append((user, sd))
    active = list(range(len(users)))
    while active:
        k = active[int(rng.integers(len(active)))]
        user, sd = users[k]
        assignment = assignment_next(project=project, labeler=user)
        if assignment is None:
            active.remove(k)
            continue
        shown = list(assignment.shown_order)
        if sd is None:
            perceived = rng.permutation(len(shown)).astype(float)
        else:
            perceived = np.array([quality[rid] for rid in shown]) + rng.normal(0, sd, size=len(shown))
        order = np.argsort(-perceived)
        ranks = {shown[j]: position + 1 for position, j in enumerate(order)}
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)

    rankings = Ranking.objects.filter(project=project, is_current=True)
    entries = RankingEntry.objects.filter(ranking__in=rankings).values_list(
        "ranking__labeler_id", "ranking__prompt_id", "response_id", "rank"
    )
    sums: dict[int, dict[int, list[float]]] = {}
    labelers = sorted({u.pk for u, _ in users})
    units = sorted(quality)
    matrix = np.full((len(labelers), len(units)), np.nan)
    lab_index = {lid: i for i, lid in enumerate(labelers)}
    unit_index = {rid: j for j, rid in enumerate(units)}
    for labeler_id, prompt_id, response_id, rank in entries:
        sums.setdefault(prompt_id, {}).setdefault(response_id, []).append(rank)
        matrix[lab_index[labeler_id], unit_index[response_id]] = rank
    correct = 0
    for prompt_id, by_response in sums.items():
        means = {rid: sum(v) / len(v) for rid, v in by_response.items()}
        top = min(sorted(means), key=lambda rid: means[rid])
        correct += top == best[prompt_id]
    import krippendorff

    return {
        "labels": rankings.count(),
        "consensus_accuracy": correct / args.prompts,
        "alpha": float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="adaptive-bench-"))
    django_setup(work / "bench.sqlite3")
    started = time.perf_counter()
    import numpy as np

    rng = np.random.default_rng(args.seed)
    world = {  # the same prompts and labelers for both projects
        "orders": [rng.permutation(N_RESPONSES) for _ in range(args.prompts)],
        "noise": rng.uniform(args.noise_low, args.noise_high, size=args.labelers - 1).tolist() + [None],  # last: bad
    }
    fixed = simulate(args, "fixed", world)
    adaptive = simulate(args, "adaptive", world)
    result = {
        "labels_fixed": fixed["labels"],
        "labels_adaptive": adaptive["labels"],
        "labels_saved_pct": round(100 * (1 - adaptive["labels"] / fixed["labels"]), 1),
        "consensus_accuracy_fixed": round(fixed["consensus_accuracy"], 4),
        "consensus_accuracy_adaptive": round(adaptive["consensus_accuracy"], 4),
        "alpha_fixed": round(fixed["alpha"], 4),
        "alpha_adaptive": round(adaptive["alpha"], 4),
        "prompts": args.prompts,
        "labelers": args.labelers,
        "agreement_threshold": args.agreement,
        "overlap_min": args.overlap_min,
        "overlap_max": args.overlap_max,
        "seed": args.seed,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
