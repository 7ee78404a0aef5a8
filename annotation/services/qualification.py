"""Qualification: a project may ask new labelers to rank its qualification prompts first (gold prompts the
manager marked for it). Each item shows the labeler their order next to the reference, the pairs that differ and
the guideline section that decides; once every item is ranked, the labeler passes when their pairwise agreement
with the references reaches the project's threshold. A manager sees every attempt and may admit or refuse anyone.
InstructGPT selected its labelers with such a screening test (Ouyang et al., 2022, appendix B.1).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.feedback import LETTERS, guideline_sections, order_string, pair_agreement, passage_for
from annotation.models import Membership, Project, Prompt, Ranking
from annotation.selectors import ranks_by_ranking
from annotation.services.gold import prompt_gold_set

QUALIFIED = ("passed", "admitted")
NO_QUALIFICATION_SET = "This project asks for a qualification but has no qualification prompts yet."


@transaction.atomic
def qualification_prompt_set(*, prompt: Prompt, ranks: dict[int, int]) -> Prompt:
    """Make the prompt one of the project's qualification items, with `ranks` as its reference (as for gold)."""
    prompt = prompt_gold_set(prompt=prompt, ranks=ranks)
    prompt.is_qualification = True
    prompt.save(update_fields=["is_qualification"])
    return prompt


def is_qualified(*, project: Project, labeler: AbstractUser) -> bool:
    """May this labeler take the project's ordinary prompts? Managers and admins always may."""
    if not project.qualification_required or labeler.is_superuser:
        return True
    membership = Membership.objects.filter(project=project, user=labeler).values_list("role", "qualification").first()
    if membership is None:
        return False
    role, status = membership
    return role == Membership.Role.MANAGER or status in QUALIFIED


def qualification_prompts(project: Project):
    return Prompt.objects.filter(project=project, is_gold=True, is_qualification=True).order_by("id")


def qualification_items(*, project: Project, labeler: AbstractUser) -> list[dict]:
    """Each qualification prompt this labeler ranked: their order, the reference, the pairs that differ, the
    agreement and the guideline section that decides (the one named in the prompt's metadata, else the closest)."""
    rankings = list(
        Ranking.objects.filter(project=project, labeler=labeler, is_current=True, prompt__is_qualification=True)
        .select_related("prompt")
        .order_by("prompt_id")
    )
    ranks = ranks_by_ranking([r.pk for r in rankings])
    guideline = project.guidelines.order_by("-version").values_list("text", flat=True).first() or ""
    sections = guideline_sections(guideline)
    items = []
    for ranking in rankings:
        prompt = ranking.prompt
        mine = ranks.get(ranking.pk, {})
        letters = {rid: LETTERS[i] for i, rid in enumerate(ranking.shown_order) if i < len(LETTERS)}
        reference = {int(rid): float(rank) for rid, rank in (prompt.gold_ranks or {}).items()}
        same, compared, flipped = pair_agreement(mine, reference, letters, who="the reference")
        named = (prompt.metadata or {}).get("guideline_section", "") if isinstance(prompt.metadata, dict) else ""
        passage = passage_for(sections, named=str(named or ""), text=prompt.text) if flipped else None
        items.append(
            {
                "prompt_id": prompt.pk, "prompt_text": prompt.text, "ranking_id": ranking.pk,
                "my_order": order_string(mine, letters), "reference_order": order_string(reference, letters),
                "same": same, "compared": compared, "agreement": same / compared if compared else None,
                "flipped": flipped, "passage_title": passage[0] if passage else "",
                "passage_text": passage[1] if passage else "",
            }
        )  # fmt: skip
    return items


def qualification_state(*, project: Project, labeler: AbstractUser) -> dict:
    """Where this labeler stands: status, items done of total, score (pooled pairwise agreement) and threshold."""
    membership = Membership.objects.filter(project=project, user=labeler).first()
    total = qualification_prompts(project).count()
    items = qualification_items(project=project, labeler=labeler)
    same = sum(i["same"] for i in items)
    compared = sum(i["compared"] for i in items)
    return {
        "required": project.qualification_required,
        "status": membership.qualification if membership else "",
        "qualified": is_qualified(project=project, labeler=labeler),
        "done": len(items),
        "total": total,
        "score": same / compared if compared else None,
        "threshold": project.qualification_threshold,
        "items": items,
    }


def qualification_after_submit(*, project: Project, labeler: AbstractUser) -> None:
    """Called when a labeler ranked a qualification prompt: once every item is ranked, pass or fail them (a
    manager's decision is never overwritten)."""
    membership = Membership.objects.select_for_update().filter(project=project, user=labeler).first()
    if membership is None or membership.qualification in ("admitted", "refused", "passed"):
        return
    state = qualification_state(project=project, labeler=labeler)
    if state["done"] < state["total"]:
        return
    score = state["score"] if state["score"] is not None else 0.0
    membership.qualification = "passed" if score >= project.qualification_threshold else "failed"
    membership.qualification_score = score
    membership.qualification_at = timezone.now()
    membership.save(update_fields=["qualification", "qualification_score", "qualification_at"])


@transaction.atomic
def qualification_decide(*, project: Project, labeler: AbstractUser, admit: bool) -> Membership:
    """A manager's decision: admit (the labeler may start) or refuse (no prompts), whatever the score."""
    membership = Membership.objects.select_for_update().filter(project=project, user=labeler).first()
    if membership is None or membership.role != Membership.Role.LABELER:
        raise ValidationError("Only labelers of this project can be admitted or refused.")
    membership.qualification = "admitted" if admit else "refused"
    membership.qualification_at = timezone.now()
    membership.save(update_fields=["qualification", "qualification_at"])
    return membership


def qualification_attempts(*, project: Project) -> list[dict]:
    """Every labeler's qualification: status, score, items done, when (for the manager's page)."""
    total = qualification_prompts(project).count()
    done = {}
    for labeler_id in Ranking.objects.filter(
        project=project, is_current=True, prompt__is_qualification=True
    ).values_list("labeler_id", flat=True):
        done[labeler_id] = done.get(labeler_id, 0) + 1
    rows = []
    for m in Membership.objects.filter(project=project, role=Membership.Role.LABELER).select_related("user"):
        rows.append(
            {
                "labeler": m.user.get_username(), "user_id": m.user_id, "status": m.qualification or "not started",
                "score": m.qualification_score, "done": done.get(m.user_id, 0), "total": total,
                "at": m.qualification_at,
            }
        )  # fmt: skip
    return sorted(rows, key=lambda r: r["labeler"])
