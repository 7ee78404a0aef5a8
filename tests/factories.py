import factory
from django.contrib.auth import get_user_model

from annotation.models import Assignment, Guideline, Membership, Project, Prompt, Response

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    overlap = 3

    @factory.post_generation
    def guideline(obj, create, extracted, **kwargs):
        if create:
            Guideline.objects.create(project=obj, version=1, text=extracted or "# Guidelines\nRank best first.")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    text = factory.Sequence(lambda n: f"Prompt number {n}: explain something.")
    content_hash = factory.Sequence(lambda n: f"{n:064x}")

    @factory.post_generation
    def responses(obj, create, extracted, **kwargs):
        """PromptFactory(responses=4) creates 4 responses (default 4); a list of texts creates those."""
        if not create:
            return
        texts = extracted if isinstance(extracted, list) else [f"Answer {i} to {obj.pk}" for i in range(extracted or 4)]
        for i, text in enumerate(texts):
            Response.objects.create(prompt=obj, text=text, index=i, model_name=f"model-{i}")


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory, responses=0)
    text = factory.Sequence(lambda n: f"stray response {n}")
    index = factory.Sequence(lambda n: n % 10)


def member(project: Project, role: str = Membership.Role.LABELER, **kwargs):
    user = UserFactory(**kwargs)
    Membership.objects.create(project=project, user=user, role=role)
    return user


def labeler(project: Project, **kwargs):
    return member(project, Membership.Role.LABELER, **kwargs)


def manager(project: Project, **kwargs):
    return member(project, Membership.Role.MANAGER, **kwargs)


__all__ = ["Assignment", "AdminFactory", "ProjectFactory", "PromptFactory", "ResponseFactory", "UserFactory"]


def rank_queue(project: Project, user, ranks_for=None) -> list:
    """Let `user` work through their whole queue in `project` through the services (assignment_next, ranking_submit).

    `ranks_for(prompt, responses)` returns {response_id: rank} (default: by response index, index 0 best).
    Returns the rankings submitted."""
    from annotation.services.assignments import assignment_next
    from annotation.services.rankings import ranking_submit

    ranks_for = ranks_for or (lambda prompt, responses: {r.id: r.index + 1 for r in responses})
    rankings = []
    while (assignment := assignment_next(project=project, labeler=user)) is not None:
        responses = list(assignment.prompt.responses.filter(id__in=assignment.shown_order))
        ranking, _ = ranking_submit(
            labeler=user, assignment_id=assignment.id, ranks=ranks_for(assignment.prompt, responses)
        )
        rankings.append(ranking)
    return rankings


def ranking_make(prompt, labeler, ranks: list[int], **fields):
    """A ranking of the prompt's responses (in index order) written straight into the tables (no assignment).

    `fields` set Ranking fields (flags, guideline_version, is_current, version, rationale, ...); `created_at` is
    applied after the insert (the field is auto_now_add)."""
    from annotation.models import Ranking, RankingEntry

    created_at = fields.pop("created_at", None)
    responses = list(prompt.responses.order_by("index"))
    ranking = Ranking.objects.create(
        project=prompt.project, prompt=prompt, labeler=labeler, num_responses=len(responses),
        shown_order=[r.id for r in responses], **({"guideline_version": 1} | fields),
    )  # fmt: skip
    RankingEntry.objects.bulk_create(
        RankingEntry(ranking=ranking, response=r, rank=value, shown_position=i, num_responses=len(responses))
        for i, (r, value) in enumerate(zip(responses, ranks, strict=True))
    )
    if created_at is not None:
        Ranking.objects.filter(pk=ranking.pk).update(created_at=created_at)
        ranking.created_at = created_at
    return ranking
