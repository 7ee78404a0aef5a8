"""Simulated labelers for the demo: they rank every demo prompt from its reference order with seeded noise.

They exist so that a fresh demo has something to train on (`run_chain --project demo`) and to show on the agreement,
labeler-quality and leaderboard pages. Their rankings go through the same assignment and submit services as a
person's, and carry `metadata["source"] == SIMULATED_SOURCE`. They are not evidence of anything: 27 prompts ranked
by three scripts make a smoke test, not a result.

Generated responses (a new round from `generate_responses`, or a blind comparison batch from `compare_policy`) have
no reference order. For those the simulated labelers judge each response by its word-level likeness
(`difflib.SequenceMatcher`) to the demo prompt's best-ranked answer, then add their usual noise: a reference-guided
script, so the demo closes the loop end to end; the pages label these rankings as simulated.
"""

import difflib
import random
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from annotation.demo.data import PROMPTS
from annotation.models import Membership, Project, Response
from annotation.services.assignments import assignment_next, assignment_skip
from annotation.services.projects import membership_set
from annotation.services.rankings import ranking_submit

SIMULATED_SOURCE = "simulated demo labeler"
# external id -> (response texts in import order, their reference ranks)
REFERENCES: dict[str, tuple[list[str], list[int]]] = {
    row["id"]: ([r["text"] for r in row["responses"]], row["reference_ranks"]) for row in PROMPTS
}
KEEP_TIE = 0.5  # a reference tie (two equally good answers) is kept by half the labelers, split by the others
TIE = 0.05  # chance that two neighbouring answers get the same rank although the reference prefers one


@dataclass(frozen=True)
class SimulatedLabeler:
    username: str
    swap: float  # chance that two neighbouring answers come out in the wrong order


# Careful, average and hasty, so that the labeler-quality page has something to tell apart.
SIMULATED_LABELERS = (
    SimulatedLabeler("dave", 0.05),
    SimulatedLabeler("erin", 0.15),
    SimulatedLabeler("frank", 0.35),
)


def noisy_ranks(reference: list[int], rng: random.Random, *, swap: float, tie: float = TIE) -> list[int]:
    """One labeler's dense ranks (1 = best, ties allowed) for responses whose intended ranks are `reference`.

    Walks the order best first: each neighbouring pair is swapped with probability `swap` or tied with
    probability `tie`. A swapped pair is not looked at again, so an answer moves one place at most.
    """
    groups: list[list[int]] = []  # response indices, best group first; a group of two or more is a tie
    for rank in sorted(set(reference)):
        group = [i for i, r in enumerate(reference) if r == rank]
        if len(group) > 1 and rng.random() >= KEEP_TIE:
            rng.shuffle(group)
            groups += [[i] for i in group]
        else:
            groups.append(group)
    i = 0
    while i < len(groups) - 1:
        roll = rng.random()
        if roll < swap:
            groups[i], groups[i + 1] = groups[i + 1], groups[i]
            i += 2
        elif roll < swap + tie:
            groups[i : i + 2] = [groups[i] + groups[i + 1]]
        else:
            i += 1
    ranks = [0] * len(reference)
    for rank, group in enumerate(groups, start=1):
        for index in group:
            ranks[index] = rank
    return ranks


def _simulated_user(username: str) -> AbstractUser:
    """Nobody logs in as a simulated labeler: inactive, with an unusable password (like imported annotators)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.first_name, user.last_name = username.capitalize(), "(simulated)"
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()
    user.save()
    return user


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def likeness_ranks(texts: list[str], best: list[str]) -> list[int]:
    """Dense ranks (1 = best, equal likeness = tie) of responses by their word-level likeness to the closest of the
    `best` answers (difflib's ratio: a standard-library measure, good enough for a script judging a demo)."""
    targets = [_words(b) for b in best]
    likeness = [round(max(difflib.SequenceMatcher(None, _words(t), b).ratio() for b in targets), 6) for t in texts]
    order = sorted(set(likeness), reverse=True)
    return [order.index(value) + 1 for value in likeness]


def _reference_for(prompt, responses: list[tuple[int, str]]) -> list[int] | None:
    """The intended ranks of the prompt's responses (in index order): the demo's own for a demo prompt as shipped,
    likeness to its best answer for generated responses to a demo prompt; None when there is no reference."""
    texts, reference = REFERENCES.get(prompt.external_id, ([], []))
    if not texts:
        return None
    if [text for _, text in responses] == texts:
        return reference
    if "source_prompt_id" in (prompt.metadata or {}):  # a generated round: judged against the best answer
        best = [text for text, rank in zip(texts, reference, strict=True) if rank == 1]
        return likeness_ranks([text for _, text in responses], best)
    return None


def _rank_queue(project: Project, labeler: AbstractUser, swap: float) -> int:
    """Take the labeler's next task until none is left, ranking each from its reference; returns rankings made."""
    created = 0
    while (assignment := assignment_next(project=project, labeler=labeler)) is not None:
        prompt = assignment.prompt
        responses = list(Response.objects.filter(prompt=prompt).order_by("index").values_list("id", "text"))
        reference = _reference_for(prompt, responses)
        if reference is None or len(assignment.shown_order) != len(responses):
            assignment_skip(assignment=assignment)  # not a demo prompt (or not all shown): no reference
            continue
        index = {rid: i for i, (rid, _) in enumerate(responses)}
        rng = random.Random(f"{labeler.username}:{prompt.external_id}")  # reproducible, different per labeler
        ranks = noisy_ranks(reference, rng, swap=swap)
        _, new = ranking_submit(
            labeler=labeler,
            assignment_id=assignment.pk,
            ranks={rid: ranks[index[rid]] for rid in assignment.shown_order},
            time_spent_s=round(rng.uniform(20, 120), 1),
            metadata={"source": SIMULATED_SOURCE},
        )
        created += new
    return created


def demo_rankings_simulate(*, project: Project) -> int:
    """Every simulated labeler ranks every demo prompt it has not ranked yet; returns the rankings created."""
    created = 0
    for simulated in SIMULATED_LABELERS:
        labeler = _simulated_user(simulated.username)
        membership_set(project=project, user=labeler, role=Membership.Role.LABELER)
        created += _rank_queue(project, labeler, simulated.swap)
    return created
