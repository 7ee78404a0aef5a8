import pytest
from django.core.exceptions import ValidationError

from annotation.models import Ranking
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from tests.factories import ProjectFactory, PromptFactory, labeler


def test_next_then_submit_stores_ranking_with_tie(db):
    project = ProjectFactory(overlap=2)
    PromptFactory(project=project)
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    shown = assignment.shown_order
    ranks = {shown[0]: 1, shown[1]: 2, shown[2]: 2, shown[3]: 3}
    ranking, created = ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks)
    assert created
    again, created_again = ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks)
    assert again.pk == ranking.pk and not created_again
    assert dict(ranking.entries.values_list("response_id", "rank")) == ranks
    with pytest.raises(ValidationError, match="dense"):
        ranking_submit(
            labeler=user, assignment_id=assignment.id, ranks={shown[0]: 1, shown[1]: 3, shown[2]: 3, shown[3]: 4}
        )
    assert Ranking.objects.count() == 1
