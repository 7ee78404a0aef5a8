"""The labeling hot path's hand-written reads (annotation/hot_sql.py) return what the ORM queries they replace return:
the same rows, converted the same way (booleans, aware datetimes, JSON), None/empty where the ORM finds nothing; its
writes store what the ORM's create/bulk_create/update store."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation import hot_sql
from annotation.models import Assignment, Guideline, Membership, Project, Prompt, Ranking, RankingEntry, Response
from tests.factories import ProjectFactory, PromptFactory, UserFactory, labeler


def fields_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


@pytest.fixture
def setup(db):
    project = ProjectFactory(slug="hot", closed_at=timezone.now() + timedelta(days=3))
    lea = labeler(project, username="lea")
    prompt = PromptFactory(
        project=project,
        text="Hi <b>there</b>",
        messages=[{"role": "user", "content": "Hi"}],
        category="chat",
        responses=[],
    )
    for index, text in [(2, "third"), (0, "first"), (1, "second")]:
        Response.objects.create(prompt=prompt, text=text, model_name=f"m{index}", index=index, metadata={"k": index})
    now = timezone.now()
    lease = Assignment.objects.create(
        project=project, prompt=prompt, labeler=lea, shown_order=[1, 2], expires_at=now + timedelta(minutes=5)
    )
    Assignment.objects.create(
        project=project,
        prompt=PromptFactory(project=project),
        labeler=lea,
        status="submitted",
        expires_at=now,
        shown_order=[],
    )
    return project, lea, prompt, lease


def test_row_by_pk_matches_get_for_every_field_type(setup):
    project, lea, prompt, lease = setup
    for model, pk in [(Prompt, prompt.pk), (Project, project.pk), (Assignment, lease.pk)]:
        raw, orm = hot_sql.row_by_pk(model, pk), model.objects.get(pk=pk)
        assert fields_of(raw) == fields_of(orm)
        assert raw._state.adding is False and raw._state.db == "default"
    assert hot_sql.row_by_pk(Prompt, prompt.pk).messages == [{"role": "user", "content": "Hi"}]
    assert hot_sql.row_by_pk(Prompt, prompt.pk).is_gold is False  # a bool, not SQLite's 0
    assert hot_sql.row_by_pk(Assignment, lease.pk).expires_at.tzinfo is not None
    assert hot_sql.row_by_pk(Prompt, 10**9) is None
    assert hot_sql.row_by_pk(Prompt, 10**40) is None  # beyond 64 bits: nothing, like the ORM (no OverflowError)


def test_values_by_pk_matches_values_list(setup):
    _, _, _, lease = setup
    fields = ("status", "expires_at")
    assert hot_sql.values_by_pk(Assignment, lease.pk, fields) == Assignment.objects.values_list(*fields).get(
        pk=lease.pk
    )
    assert hot_sql.values_by_pk(Assignment, 10**9, fields) is None


def test_project_with_role_matches_membership_join(setup):
    project, lea, _, _ = setup
    found, role = hot_sql.project_with_role(slug="hot", user_id=lea.pk)
    assert fields_of(found) == fields_of(project) and role == "labeler"
    Membership.objects.filter(user=lea).update(role="manager")
    assert hot_sql.project_with_role(slug="hot", user_id=lea.pk)[1] == "manager"
    outsider = UserFactory()
    assert hot_sql.project_with_role(slug="hot", user_id=outsider.pk) == (None, None)
    assert hot_sql.project_with_role(slug="nope", user_id=lea.pk) == (None, None)


def test_project_with_membership(setup):
    project, lea, _, _ = setup
    found, member = hot_sql.project_with_membership(project_id=project.pk, user_id=lea.pk)
    assert fields_of(found) == fields_of(project) and member is True
    found, member = hot_sql.project_with_membership(project_id=project.pk, user_id=UserFactory().pk)
    assert found.pk == project.pk and member is False
    assert hot_sql.project_with_membership(project_id=10**9, user_id=lea.pk) == (None, False)


def test_responses_in_model_order(setup):
    _, _, prompt, _ = setup
    raw = hot_sql.responses_of(prompt_id=prompt.pk)
    assert [fields_of(r) for r in raw] == [fields_of(r) for r in prompt.responses.all()]
    assert [r.text for r in raw] == ["first", "second", "third"]


def test_labeler_counts_match_the_aggregate(setup):
    project, lea, _, lease = setup
    for now in (timezone.now(), timezone.now() + timedelta(hours=1)):  # the lease running, then lapsed
        orm = Assignment.objects.filter(project=project, labeler=lea).aggregate(
            done=Count("id", filter=Q(status="submitted")),
            assigned=Count("id", filter=Q(status="active", expires_at__gt=now)),
        )
        assert hot_sql.labeler_counts(project_id=project.pk, labeler_id=lea.pk, now=now) == (
            orm["done"],
            orm["assigned"],
        )
    assert hot_sql.labeler_counts(project_id=project.pk, labeler_id=UserFactory().pk, now=timezone.now()) == (0, 0)


def test_active_assignment_and_guideline_version(setup):
    project, lea, _, lease = setup
    assert hot_sql.active_assignment_id(project_id=project.pk, labeler_id=lea.pk) == lease.pk
    Assignment.objects.filter(pk=lease.pk).update(status="skipped")
    assert hot_sql.active_assignment_id(project_id=project.pk, labeler_id=lea.pk) is None
    assert hot_sql.latest_guideline_version(project_id=project.pk) == (
        project.guidelines.order_by("-version").values_list("version", flat=True).first()
    )
    Guideline.objects.create(project=project, version=7, text="Be kind.", created_by=lea)
    assert hot_sql.latest_guideline_version(project_id=project.pk) == 7


def test_user_for_token(setup):
    _, lea, _, _ = setup
    token = Token.objects.create(user=lea)
    user, found = hot_sql.user_for_token(token.key)
    assert fields_of(user) == fields_of(User.objects.get(pk=lea.pk))
    assert (found.key, found.user_id, found.created) == (token.key, lea.pk, token.created)
    assert hot_sql.user_for_token("0" * 40) == (None, None)


def test_staged_prompts_are_invisible_like_through_the_default_manager(setup):
    project, _, prompt, _ = setup
    staged = PromptFactory(project=project, responses=[])
    Prompt.all_objects.filter(pk=staged.pk).update(staged=True)
    assert Prompt.objects.filter(pk=staged.pk).first() is None
    assert hot_sql.row_by_pk(Prompt, staged.pk) is None


def test_insert_writes_what_create_writes(setup):
    """Every field type of a lease and a ranking (foreign keys, JSON, aware datetimes, auto_now_add, defaults):
    the row `insert` writes reads back the same as the row `objects.create` writes."""
    project, lea, prompt, _ = setup
    other = PromptFactory(project=project, responses=[])
    expires = timezone.now() + timedelta(minutes=7)
    values = {"project": project, "labeler": lea, "shown_order": [3, 1, 2], "expires_at": expires}
    orm = Assignment.objects.create(prompt=other, **values)
    raw = hot_sql.insert([Assignment(prompt=PromptFactory(project=project, responses=[]), **values)])[0]
    assert raw.pk is not None and raw._state.adding is False and raw._state.db == "default"
    stored_raw, stored_orm = fields_of(Assignment.objects.get(pk=raw.pk)), fields_of(Assignment.objects.get(pk=orm.pk))
    assert stored_raw.pop("created_at") >= stored_orm.pop("created_at")  # auto_now_add filled in by pre_save
    differ = {"id", "prompt_id"}
    assert {k: v for k, v in stored_raw.items() if k not in differ} == {
        k: v for k, v in stored_orm.items() if k not in differ
    }
    assert stored_raw["expires_at"] == expires and stored_raw["shown_order"] == [3, 1, 2]

    ranking = hot_sql.insert(
        [Ranking(project=project, prompt=prompt, labeler=lea, num_responses=2, shown_order=[2, 1], time_spent_s=1.5)]
    )[0]
    stored = Ranking.objects.get(pk=ranking.pk)
    assert fields_of(stored) == fields_of(ranking)  # defaults (flags [], metadata {}, is_current, source) included
    assert stored.flags == [] and stored.metadata == {} and stored.is_current is True and stored.staged is False


def test_insert_many_sets_each_id_in_order(setup):
    project, lea, prompt, _ = setup
    ranking = Ranking.objects.create(project=project, prompt=prompt, labeler=lea, num_responses=3, shown_order=[])
    responses = list(prompt.responses.all())
    entries = hot_sql.insert(
        [
            RankingEntry(ranking=ranking, response=r, rank=3 - i, shown_position=i, num_responses=3)
            for i, r in enumerate(responses)
        ]  # fmt: skip
    )
    assert [e.pk for e in entries] == sorted(e.pk for e in entries)
    stored = {e.pk: (e.response_id, e.rank, e.shown_position) for e in RankingEntry.objects.filter(ranking=ranking)}
    assert stored == {e.pk: (e.response_id, e.rank, e.shown_position) for e in entries}
    assert hot_sql.insert([]) == []
    # an id given by the caller is written as given (through bulk_create, as the ORM does)
    RankingEntry.objects.filter(ranking=ranking).delete()
    entry = RankingEntry(id=10**6, ranking=ranking, response=responses[0], rank=1, shown_position=0, num_responses=3)
    assert hot_sql.insert([entry])[0].pk == 10**6
    assert RankingEntry.objects.filter(pk=10**6, ranking=ranking).exists()


def test_insert_refuses_an_unsaved_related_object_and_keeps_unique_constraints(setup):
    project, lea, prompt, _ = setup
    with pytest.raises(ValueError, match="unsaved related object"):
        hot_sql.insert([Ranking(project=project, prompt=Prompt(project=project), labeler=lea, num_responses=0)])
    values = {"project": project, "prompt": prompt, "labeler": lea, "shown_order": [], "expires_at": timezone.now()}
    with pytest.raises(IntegrityError), transaction.atomic():  # the lease in `setup` holds (prompt, lea)
        hot_sql.insert([Assignment(**values)])


def test_update_by_pk_matches_update(setup):
    project, lea, prompt, lease = setup
    now = timezone.now()
    assert hot_sql.update_by_pk(Assignment, lease.pk, {"status": "submitted", "completed_at": now}) == 1
    lease.refresh_from_db()
    assert (lease.status, lease.completed_at) == ("submitted", now)
    before = Prompt.objects.get(pk=prompt.pk).ranking_count
    assert hot_sql.update_by_pk(Prompt, prompt.pk, {"is_complete": True}, add={"ranking_count": 2}) == 1
    assert hot_sql.update_by_pk(Prompt, prompt.pk, {}, add={"ranking_count": 1}) == 1
    prompt.refresh_from_db()
    assert (prompt.ranking_count, prompt.is_complete) == (before + 3, True)
    # through the default manager: a staged prompt is not there to update, as with Prompt.objects.filter().update()
    staged = PromptFactory(project=project, responses=[])
    Prompt.all_objects.filter(pk=staged.pk).update(staged=True)
    assert Prompt.objects.filter(pk=staged.pk).update(is_complete=True) == 0
    assert hot_sql.update_by_pk(Prompt, staged.pk, {"is_complete": True}, add={"ranking_count": 1}) == 0
    assert Prompt.all_objects.get(pk=staged.pk).ranking_count == 0
