"""Gold prompts: prompts with a reference ranking, mixed into labelers' queues (at the project's `gold_rate`) to
measure each labeler's accuracy. They look like any other prompt to a labeler, are left out of the agreement
figures, and never enter exported training data. Only managers and admins may see or change them (callers check).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from annotation.models import Project, Prompt, Ranking
from annotation.ranking_rules import ranking_errors

GOLD_NO_RESPONSES = "Prompt {prompt_id} has fewer than two responses: it cannot have a reference ranking."


@transaction.atomic
def prompt_gold_set(*, prompt: Prompt, ranks: dict[int, int]) -> Prompt:
    """Mark the prompt gold with `ranks` ({response_id: rank}, 1 = best, ties allowed, dense) as its reference.

    Every response of the prompt must be ranked, whatever the project shows per task. A prompt labelers already
    ranked may turn gold: their rankings then count towards gold accuracy instead of agreement. Setting it again
    replaces the reference.
    """
    prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
    response_ids = sorted(prompt.responses.values_list("id", flat=True))
    if len(response_ids) < 2:
        raise ValidationError(GOLD_NO_RESPONSES.format(prompt_id=prompt.pk))
    errors = ranking_errors(ranks, response_ids, allow_ties=True)
    if errors:
        raise ValidationError(errors)
    prompt.is_gold = True
    prompt.gold_ranks = {str(rid): ranks[rid] for rid in response_ids}  # JSON object keys are strings
    prompt.save(update_fields=["is_gold", "gold_ranks"])
    return prompt


@transaction.atomic
def prompt_gold_unset(*, prompt: Prompt) -> Prompt:
    """Make a gold prompt an ordinary one again. Gold prompts do not count their rankings towards the overlap, so the
    count (and whether the prompt is complete) is taken again from its current rankings."""
    prompt = Prompt.objects.select_for_update().select_related("project").get(pk=prompt.pk)
    count = Ranking.objects.filter(prompt=prompt, is_current=True).count()
    prompt.is_gold = prompt.is_qualification = False
    prompt.gold_ranks = None
    prompt.ranking_count = count
    prompt.is_complete = count >= prompt.project.overlap
    prompt.save(update_fields=["is_gold", "is_qualification", "gold_ranks", "ranking_count", "is_complete"])
    return prompt


def gold_prompts_get(*, project: Project) -> QuerySet[Prompt]:
    """The project's gold prompts with their responses (for managers: the reference ranking and model names)."""
    return Prompt.objects.filter(project=project, is_gold=True).prefetch_related("responses").order_by("id")
