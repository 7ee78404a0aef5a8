"""The pure hygiene checks (annotation/hygiene.py): personal information with real validators, redaction, near
duplicates, contamination and the cap."""

import numpy as np
import pytest

from annotation import hygiene
from annotation.hygiene import EvalIndex, NearDupIndex, Policy, check_prompt, find_pii, redact


@pytest.mark.parametrize(
    ("text", "kind", "detail"),
    [
        ("Write to jane.doe+news@example.co.uk about it.", "email", ""),
        ("Call me on (415) 555-2671 tomorrow.", "phone", ""),
        ("Ring +44 20 7946 0958 after six.", "phone", ""),
        ("My card is 4111 1111 1111 1111, expiry soon.", "card", ""),
        ("Pay into GB82 WEST 1234 5698 7654 32 today.", "iban", ""),
        ("My SSN is 536-90-4399.", "national_id", "US SSN"),
        ("CPF 390.533.447-05 please.", "national_id", "Brazilian CPF"),
        ("DNI 54362315-K here.", "national_id", "Spanish DNI"),
        ("I live at 225 E. John Carpenter Freeway, Suite 1500 Irving, Texas 75062 now.", "address", "US"),
        ("Send it to 10 Downing Street, London SW1A 2AA.", "address", "GB"),
    ],
)
def test_find_pii_detects_each_kind(text, kind, detail):
    matches = find_pii(text)

    assert [(m.kind, m.detail) for m in matches] == [(kind, detail)]


@pytest.mark.parametrize(
    "text",
    [
        "Write a poem about 3 cats and the year 2024, with 14 lines of 10 syllables each.",
        "My card is 4111 1111 1111 1112 (a bad check digit).",
        "Pay into GB82 WEST 1234 5698 7654 33 (a bad IBAN checksum).",
        "The SSN 000-12-3456 is never issued.",
        "Call 555-0100, which is not a real number.",
        "Email me at the usual address.",
    ],
)
def test_find_pii_leaves_numbers_that_fail_their_validator(text):
    assert find_pii(text) == []


def test_redact_replaces_each_match_by_its_kind():
    text = "Mail bob@example.com or call (415) 555-2671; SSN 536-90-4399."

    assert redact(text, find_pii(text)) == "Mail [EMAIL] or call [PHONE]; SSN [NATIONAL_ID]."


def test_check_prompt_redacts_under_the_redact_policy():
    decision = check_prompt("Email bob@example.com a summary.", policy=Policy(pii="redact"))

    assert (decision.accepted, decision.text, decision.redacted) == (True, "Email [EMAIL] a summary.", ["email"])


def test_check_prompt_redacts_chat_turns_and_their_text():
    messages = [{"role": "user", "content": "I am bob@example.com"}, {"role": "assistant", "content": "Hi."}]

    decision = check_prompt("ignored", messages=messages, policy=Policy())

    assert decision.messages[0]["content"] == "I am [EMAIL]" and decision.messages[1]["content"] == "Hi."
    assert decision.text == "User: I am [EMAIL]\n\nAssistant: Hi."


def test_check_prompt_refuses_under_the_refuse_policy_and_names_the_kinds():
    decision = check_prompt("Card 4111 1111 1111 1111, mail bob@example.com", policy=Policy(pii="refuse"))

    assert not decision.accepted
    assert [r.code for r in decision.reasons] == ["pii"]
    assert "a payment card number, an e-mail address" in decision.reasons[0].message


def test_check_prompt_off_policy_keeps_the_text():
    decision = check_prompt("Mail bob@example.com", policy=Policy(pii="off"))

    assert (decision.accepted, decision.text) == (True, "Mail bob@example.com")


def test_cap_refuses_the_author_at_the_limit_only():
    policy = Policy(cap=3)

    assert check_prompt("a prompt", policy=policy, author="alice", author_count=2).accepted
    refused = check_prompt("a prompt", policy=policy, author="alice", author_count=3)
    assert [r.code for r in refused.reasons] == ["cap"]
    assert "alice already has 3 prompts" in refused.reasons[0].message
    assert check_prompt("a prompt", policy=Policy(cap=0), author="alice", author_count=10_000).accepted


LONG = "Explain in simple words how a refrigerator keeps food cold, and why the back of it gets warm while it runs"
# the last word changed: 1 of the 18 word 5-shingles differs (Jaccard 17/19 = 0.89)
NEAR = LONG + " please."
LONG += " today."


def test_near_duplicate_refused_against_the_index_with_the_similarity():
    index = NearDupIndex(0.8)
    index.add_many([("prompt 7", LONG), ("prompt 8", "Write a haiku about autumn leaves falling on a quiet pond.")])

    refused = check_prompt(NEAR, policy=Policy(near_dup_threshold=0.8), existing=index)
    different = check_prompt("Summarise the plot of Hamlet in three sentences.", policy=Policy(), existing=index)

    assert [r.code for r in refused.reasons] == ["near_duplicate"]
    assert "prompt 7" in refused.reasons[0].message and "threshold 0.80" in refused.reasons[0].message
    assert different.accepted


def test_near_duplicate_check_off_at_threshold_zero():
    index = NearDupIndex(0.8)
    index.add("prompt 1", LONG)

    assert check_prompt(LONG, policy=Policy(near_dup_threshold=0), existing=index).accepted


def test_contamination_exact_after_normalisation_and_near():
    evals = EvalIndex(0.8)
    evals.add_set("mmlu-dev", ["What is the capital of France?", LONG])

    exact = check_prompt("  what is the CAPITAL of france ", policy=Policy(), evals=evals)
    near = check_prompt(NEAR, policy=Policy(), evals=evals)

    assert [r.code for r in exact.reasons] == ["contaminated"]
    assert "item 1 of the evaluation set 'mmlu-dev' (the same text)" in exact.reasons[0].message
    assert "item 2 of the evaluation set 'mmlu-dev' (similarity" in near.reasons[0].message
    assert check_prompt("What is the capital of Spain?", policy=Policy(), evals=evals).accepted


def test_every_reason_is_listed():
    evals = EvalIndex(0.8)
    evals.add_set("held-out", ["Mail bob@example.com now"])

    decision = check_prompt(
        "Mail bob@example.com now", policy=Policy(pii="refuse", cap=1), author="al", author_count=1, evals=evals
    )

    assert [r.code for r in decision.reasons] == ["cap", "pii", "contaminated"]
    assert decision.explain().count(".") >= 3


def test_index_finds_the_most_similar_of_many():
    index = NearDupIndex(0.8)
    index.add_many((f"prompt {i}", f"Tell me fact number {i} about the planet Mars and its two small moons.")
                   for i in range(2000))  # fmt: skip

    assert len(index) == 2000
    key, similarity = index.query("Tell me fact number 1234 about the planet Mars and its two small moons.")
    assert (key, similarity) == ("prompt 1234", 1.0)


def test_default_policy_is_documented_values():
    assert (Policy().cap, Policy().pii, Policy().near_dup_threshold) == (200, "redact", hygiene.DEFAULT_NEAR_DUP)


def test_one_text_signature_equals_the_exports():
    from annotation.exports import dedup

    texts = ["", "one", "One, two three four", "one two three four five", LONG, " ".join([LONG] * 30)]

    assert (np.stack([hygiene.signature(t) for t in texts]) == dedup.signatures(texts)).all()
