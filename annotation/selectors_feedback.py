"""Reads for a labeler's feedback page (see annotation/feedback.py for the maths).

What a labeler may learn, and when: feedback covers their rankings in batches of the project's `feedback_every`
(after 20 rankings, the first 20; after 40, the first 40…), so a labeler cannot submit one ranking and look
whether it was a gold prompt. A consensus is shown only for settled prompts (the overlap reached) that at least
MIN_OTHERS other labelers ranked, so no single other labeler's ranking is ever shown.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser

from annotation.feedback import (
    LETTERS,
    Disagreement,
    consensus_of,
    guideline_sections,
    order_string,
    pair_agreement,
    passage_for,
)
from annotation.models import Project, Ranking, Response
from annotation.selectors import ranks_by_ranking

MIN_OTHERS = 2
SHOWN_DISAGREEMENTS = 20


def labeler_feedback_get(*, project: Project, labeler: AbstractUser) -> dict:
    every = project.feedback_every
    mine_all = list(
        Ranking.objects.filter(project=project, labeler=labeler, is_current=True)
        .select_related("prompt")
        .order_by("prompt_id")
    )
    done = len(mine_all)
    base = {"enabled": every > 0, "every": every, "done": done}
    if every <= 0:
        return base | {"covered": 0, "next_at": None}
    covered_n = (done // every) * every
    # The first rankings this labeler submitted (by the time of their first version), up to the last full batch.
    first_times = dict(
        Ranking.objects.filter(project=project, labeler=labeler, version=1).values_list("prompt_id", "created_at")
    )
    mine_all.sort(key=lambda r: (first_times.get(r.prompt_id, r.created_at), r.pk))
    mine = mine_all[:covered_n]
    result = base | {"covered": covered_n, "next_at": covered_n + every}
    if not mine:
        return result | {"consensus": None, "gold": None, "disagreements": []}

    prompt_ids = [r.prompt_id for r in mine]
    others = list(
        Ranking.objects.filter(prompt_id__in=prompt_ids, is_current=True)
        .exclude(labeler=labeler)
        .values_list("pk", "prompt_id")
    )
    ranks = ranks_by_ranking([r.pk for r in mine] + [pk for pk, _ in others])
    others_by_prompt: dict[int, list[dict[int, int]]] = {}
    for pk, prompt_id in others:
        others_by_prompt.setdefault(prompt_id, []).append(ranks.get(pk, {}))

    guideline = project.guidelines.order_by("-version").values_list("text", flat=True).first() or ""
    sections = guideline_sections(guideline)
    texts = dict(Response.objects.filter(prompt_id__in=prompt_ids).values_list("pk", "text"))

    tallies = {"consensus": [0, 0, 0], "reference": [0, 0, 0]}  # pairs same, pairs compared, prompts
    disagreements: list[Disagreement] = []
    for ranking in mine:
        prompt = ranking.prompt
        my_ranks = ranks.get(ranking.pk, {})
        letters = {rid: LETTERS[i] for i, rid in enumerate(ranking.shown_order) if i < len(LETTERS)}
        if prompt.is_gold and prompt.gold_ranks:
            theirs = {int(rid): float(rank) for rid, rank in prompt.gold_ranks.items()}
            source, who = "reference", "the reference ranking"
        elif prompt.is_complete and len(others_by_prompt.get(prompt.pk, [])) >= MIN_OTHERS:
            theirs = consensus_of(others_by_prompt[prompt.pk])
            source, who = "consensus", f"the other {len(others_by_prompt[prompt.pk])} labelers on average"
        else:
            continue
        same, compared, flipped = pair_agreement(my_ranks, theirs, letters, who=who)
        if not compared:
            continue
        agreement = same / compared
        tally = tallies[source]
        tally[0] += same
        tally[1] += compared
        tally[2] += 1
        if flipped:
            involved = {rid for rid in my_ranks if any(f"{letters.get(rid)} above" in line for line in flipped)}
            wording = " ".join([prompt.text] + [texts.get(rid, "") for rid in involved])
            named = (prompt.metadata or {}).get("guideline_section", "") if isinstance(prompt.metadata, dict) else ""
            passage = passage_for(sections, named=str(named or ""), text=wording)
            disagreements.append(
                Disagreement(
                    prompt_id=prompt.pk,
                    prompt_text=prompt.text,
                    source=source,
                    agreement=agreement,
                    my_order=order_string(my_ranks, letters),
                    their_order=order_string(theirs, letters),
                    flipped=flipped,
                    passage_title=passage[0] if passage else "",
                    passage_text=passage[1] if passage else "",
                    passage_reason=passage[2] if passage else "",
                )  # fmt: skip
            )
    disagreements.sort(key=lambda d: (d.agreement, d.prompt_id))

    def summary(source):
        same, total, prompts = tallies[source]
        return {"agreement": same / total if total else None, "pairs": total, "prompts": prompts}

    return result | {
        "consensus": summary("consensus"),
        "gold": summary("reference"),
        "disagreements": disagreements[:SHOWN_DISAGREEMENTS],
        "disagreement_count": len(disagreements),
    }
