"""RankingInputSerializer.validated: the hand-checked plain judgment (the labeling hot path) gives exactly what the
serializer gives, and everything else, errors included, is the serializer's own answer."""

import math

import pytest
from rest_framework import serializers

from annotation.api.serializers import RankingInputSerializer, _plain_ranking_input

RANKS = [{"response_id": 7, "rank": 2}, {"response_id": 3, "rank": 1}]

PLAIN = [
    {"ranks": RANKS},
    {"ranks": RANKS, "time_spent_s": 3},
    {"ranks": RANKS, "time_spent_s": 2.5, "flags": [], "rationale": ""},
    {"ranks": RANKS, "time_spent_s": None},
    {"ranks": RANKS, "time_spent_s": 0},
    {"ranks": RANKS, "time_spent_s": 7 * 24 * 3600},
    {"ranks": [{"response_id": 1, "rank": -5}]},  # the service, not the input, knows the ranks allowed
    {"ranks": [{"response_id": 2**63 - 1, "rank": 10**30}]},
    {"ranks": [{"response_id": i, "rank": i} for i in range(1, 11)]},
]

NOT_PLAIN = [
    {"ranks": RANKS, "flags": ["unsafe"]},
    {"ranks": RANKS, "rationale": "  because  "},
    {"ranks": RANKS, "strength": 2},
    {"ranks": RANKS, "ratings": []},
    {"ranks": RANKS, "extra": 1},  # the serializer ignores unknown keys: so does the result
    {"ranks": [{"response_id": "7", "rank": "2"}]},  # strings: the serializer converts them
    {"ranks": [{"response_id": 7.0, "rank": 2}]},
    {"ranks": [{"response_id": True, "rank": 1}]},
    {"ranks": [{"response_id": 7, "rank": 1, "note": "x"}]},
    {"ranks": [{"response_id": 7}]},
    {"ranks": [{"response_id": 0, "rank": 1}]},
    {"ranks": [{"response_id": 2**63, "rank": 1}]},
    {"ranks": [{"response_id": 7, "rank": 1}, {"response_id": 7, "rank": 2}]},
    {"ranks": []},
    {"ranks": [{"response_id": i, "rank": i} for i in range(1, 12)]},
    {"ranks": "1,2"},
    {"ranks": [[7, 1]]},
    {},
    {"ranks": RANKS, "time_spent_s": -1},
    {"ranks": RANKS, "time_spent_s": 7 * 24 * 3600 + 1},
    {"ranks": RANKS, "time_spent_s": "3"},
    {"ranks": RANKS, "time_spent_s": True},
    {"ranks": RANKS, "time_spent_s": math.nan},
    {"ranks": RANKS, "time_spent_s": math.inf},
    {"ranks": RANKS, "flags": None},
    {"ranks": RANKS, "rationale": None},
    [RANKS],
]


def serializer_answer(data):
    serializer = RankingInputSerializer(data=data)
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", serializer.errors


def validated_answer(data):
    try:
        return "valid", dict(RankingInputSerializer.validated(data))
    except serializers.ValidationError as error:
        return "invalid", error.detail


@pytest.mark.parametrize("data", PLAIN)
def test_plain_judgments_are_checked_by_hand_with_the_serializers_result(data):
    assert _plain_ranking_input(data) is not None
    assert validated_answer(data) == serializer_answer(data)
    assert validated_answer(data)[0] == "valid"


@pytest.mark.parametrize("data", NOT_PLAIN)
def test_anything_else_is_the_serializers_answer(data):
    assert _plain_ranking_input(data) is None
    assert validated_answer(data) == serializer_answer(data)


def test_time_spent_comes_back_as_a_float():
    assert RankingInputSerializer.validated({"ranks": RANKS, "time_spent_s": 3})["time_spent_s"] == 3.0
    assert type(RankingInputSerializer.validated({"ranks": RANKS, "time_spent_s": 3})["time_spent_s"]) is float
