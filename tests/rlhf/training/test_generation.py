"""Generation from the real default policy: chat template in, sampled text out, stopped at the end of turn."""

import pytest

from rlhf.training.generation import cut_at_eos, stop_ids


def test_cut_at_eos_stops_at_the_first_of_several_stop_tokens_and_drops_padding():
    assert cut_at_eos([5, 6, 2, 7, 0], [2, 9], 0) == [5, 6, 2]
    assert cut_at_eos([5, 9, 2], [2, 9], 0) == [5, 9]
    assert cut_at_eos([5, 6, 0, 0], 2, 0) == [5, 6]


def test_stop_ids_put_the_eos_first_and_add_the_models_own_ends_of_turn():
    class Tok:
        eos_token_id = 2

    class Model:
        class generation_config:  # noqa: N801 - mimics the attribute
            eos_token_id = [2, 7]

    assert stop_ids(Model(), Tok()) == [2, 7]


@pytest.mark.slow
def test_smollm2_answers_two_prompts_in_plain_text_stopped_at_the_end_of_turn(smollm2):
    from rlhf.training.generation import generate_responses, load_for_generation

    prompts = ["\n\nHuman: What is the capital of France?\n\nAssistant:", [{"role": "user", "content": "Say hello."}]]
    pair = load_for_generation("default")
    texts = generate_responses(pair, prompts, k=1, max_new_tokens=24, seed=0)

    assert len(texts) == 2 and all(len(group) == 1 for group in texts)
    for (text,) in texts:
        assert text and text == text.strip()
        assert "<|im_" not in text and "<|endoftext|>" not in text
        assert not text.startswith(("assistant", "user", "system"))
    assert "paris" in texts[0][0].lower()
