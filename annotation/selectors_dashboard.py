"""Reads for the manager's progress dashboard: work per day and per labeler, prompts short of overlap, an ETA,
and leases held by labelers who are not working on them. The maths lives in annotation/dashboard.py."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce, Least, TruncDate
from django.utils import timezone

from annotation.dashboard import ETA_WINDOW, completion_eta, daily_series, median_or_none
from annotation.models import Assignment, Project, Prompt, Ranking
from annotation.selectors import eval_held_back

CHART_DAYS = 30
SHORT_PROMPTS_SHOWN = 20
# A lease is "held without working" when it is older than this many times the project's median time per prompt,
# and never younger than IDLE_FLOOR (a labeler reading a long answer is working).
IDLE_FACTOR = 5
IDLE_FLOOR = dt.timedelta(minutes=10)


def project_dashboard_get(*, project: Project, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    # First submissions only: a revision is not new work, and each labeling counts once on the day it was done.
    work = Ranking.objects.filter(project=project, version=1)
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    per_day = {
        row["day"]: row["n"]
        for row in work.filter(created_at__gte=now - dt.timedelta(days=CHART_DAYS + 1))
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("id"))
    }

    times: dict[int, list[float | None]] = defaultdict(list)
    for labeler_id, spent in work.values_list("labeler_id", "time_spent_s"):
        times[labeler_id].append(spent)
    project_median = median_or_none(v for values in times.values() for v in values)
    idle_after = max(IDLE_FLOOR, dt.timedelta(seconds=IDLE_FACTOR * (project_median or 0)))

    week_ago = now - dt.timedelta(days=7)
    per_labeler = {
        row["labeler_id"]: row
        for row in work.values("labeler_id", "labeler__username").annotate(
            total=Count("id"), last_7_days=Count("id", filter=Q(created_at__gte=week_ago)), last=Max("created_at")
        )
    }
    leases = (
        Assignment.objects.filter(project=project, status=Assignment.Status.ACTIVE, expires_at__gt=now)
        .values("labeler_id", "labeler__username")
        .annotate(held=Count("id"), oldest=Min("created_at"))
    )
    lease_by_labeler = {row["labeler_id"]: row for row in leases}
    labelers = []
    for labeler_id in sorted(set(per_labeler) | set(lease_by_labeler)):
        row = per_labeler.get(labeler_id, {})
        lease = lease_by_labeler.get(labeler_id)
        name = row.get("labeler__username") or lease["labeler__username"]
        last = row.get("last")
        # Idle: holds a lease it took long ago and has submitted nothing since then.
        idle = bool(lease) and now - lease["oldest"] > idle_after and (last is None or last < lease["oldest"])
        labelers.append(
            {
                "labeler": name,
                "rankings": row.get("total", 0),
                "last_7_days": row.get("last_7_days", 0),
                "median_s": median_or_none(times.get(labeler_id, [])),
                "last_ranking_at": last,
                "leases_held": lease["held"] if lease else 0,
                "oldest_lease_at": lease["oldest"] if lease else None,
                "idle": idle,
            }
        )
    labelers.sort(key=lambda r: (-r["rankings"], r["labeler"]))

    overlap = project.overlap
    prompts = Prompt.objects.filter(project=project, is_gold=False)
    # With adaptive overlap each prompt wants its own number (raised while its labelers disagree).
    target = (
        Least(Coalesce(F("wanted"), Value(project.base_target)), Value(overlap))
        if project.overlap_mode == "adaptive"
        else Value(overlap)
    )
    short = prompts.annotate(target=target, held=eval_held_back()).filter(
        is_complete=False, held=False, ranking_count__lt=F("target")
    )  # a prompt held back for an evaluation set will not be labeled: it is not work left
    totals = short.aggregate(n=Count("id"), missing=Sum(F("target") - F("ranking_count")))
    remaining = totals["missing"] or 0
    window = work.filter(prompt__is_gold=False, created_at__gte=now - ETA_WINDOW, created_at__lte=now).aggregate(
        n=Count("id"), first=Min("created_at")
    )
    eta = completion_eta(remaining=remaining, in_window=window["n"], first_in_window=window["first"], now=now)
    return {
        "per_day": daily_series(per_day, end=today, days=CHART_DAYS),
        "labelers": labelers,
        "idle_labelers": [r["labeler"] for r in labelers if r["idle"]],
        "idle_after_minutes": round(idle_after.total_seconds() / 60),
        "median_s": project_median,
        "short_prompts": totals["n"],
        "short_sample": [
            {"id": p.pk, "text": p.text[:120], "rankings": p.ranking_count, "missing": p.target - p.ranking_count}
            for p in short.order_by("ranking_count", "id")[:SHORT_PROMPTS_SHOWN]
        ],
        "eta": eta.as_dict(),
        "overlap": overlap,
    }
