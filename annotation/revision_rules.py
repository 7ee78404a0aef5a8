"""Whether a labeler may still revise a ranking, and what changed between two versions. Pure functions: the
services pass in the project's policy, the times and the ranks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

NEVER, UNTIL_CLOSED, WITHIN_HOURS = "never", "until_closed", "within_hours"


@dataclass(frozen=True)
class RevisionWindow:
    allowed: bool
    reason: str  # why not, or until when (one sentence a labeler can read)
    until: dt.datetime | None = None


def revision_window(
    *, policy: str, hours: int, closed_at: dt.datetime | None, first_at: dt.datetime, now: dt.datetime
) -> RevisionWindow:
    """May a ranking first submitted at `first_at` be revised at `now` under the project's policy?"""
    if closed_at is not None and closed_at <= now:
        return RevisionWindow(False, "This project is closed: rankings can no longer be revised.")
    if policy == NEVER:
        return RevisionWindow(False, "This project does not allow revising rankings.")
    if policy == WITHIN_HOURS:
        until = first_at + dt.timedelta(hours=hours)
        if now >= until:
            return RevisionWindow(
                False, f"Rankings can be revised for {hours} hour(s) after the first submission; that time is over."
            )
        return RevisionWindow(True, f"You can revise this ranking until {until:%Y-%m-%d %H:%M} UTC.", until)
    return RevisionWindow(True, "You can revise this ranking until the project closes.")


def version_changes(previous: dict | None, current: dict, *, letters: dict[int, str] | None = None) -> list[str]:
    """What changed from one version to the next, as short lines: 'B: rank 2 → 1', 'flags: +unsafe',
    'rationale edited', 'strength 3 → 1', 'A: form edited'. A version is {"ranks": {response_id: rank}, "flags":
    [...], "rationale": str} and optionally "strength" (pairwise) and "ratings" ({response_id: {field: value}});
    `letters` names responses by the letter the labeler saw."""
    if previous is None:
        return ["first submission"]
    letters = letters or {}
    lines = []
    for response_id in sorted(current["ranks"], key=lambda r: letters.get(r, str(r))):
        before, after = previous["ranks"].get(response_id), current["ranks"][response_id]
        if before != after:
            lines.append(f"{letters.get(response_id, response_id)}: rank {before} → {after}")
    added = sorted(set(current["flags"]) - set(previous["flags"]))
    removed = sorted(set(previous["flags"]) - set(current["flags"]))
    if added or removed:
        lines.append("flags: " + ", ".join([f"+{f}" for f in added] + [f"−{f}" for f in removed]))
    if (previous.get("rationale") or "") != (current.get("rationale") or ""):
        lines.append("rationale edited")
    if previous.get("strength") != current.get("strength"):
        lines.append(f"strength {previous.get('strength') or '—'} → {current.get('strength') or '—'}")
    before, after = previous.get("ratings") or {}, current.get("ratings") or {}
    for response_id in sorted(set(before) | set(after), key=lambda r: letters.get(r, str(r))):
        if before.get(response_id) != after.get(response_id):
            lines.append(f"{letters.get(response_id, response_id)}: form edited")
    return lines or ["no change"]
