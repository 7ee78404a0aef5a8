"""One rendering of a conversation: HH text and chat messages -> messages -> the tokenizer's chat template (SmolLM2's
ChatML) or, without a template, HH-style text as before."""

import pytest

from rlhf.training.chat import completion_messages, hh_to_messages, prompt_messages, render_chat
from rlhf.training.data import encode_sequences, format_completion, format_prompt

HH = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant:"
MESSAGES = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Tell me a joke."},
]


def test_hh_multi_turn_text_becomes_messages_without_the_open_assistant_turn():
    assert hh_to_messages(HH) == MESSAGES
    assert hh_to_messages("Human: Hi\n\nAssistant: Yo") == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"},
    ]


def test_plain_text_is_one_user_turn_and_chat_roles_are_normalised():
    assert prompt_messages("Why is the sky blue?") == [{"role": "user", "content": "Why is the sky blue?"}]
    assert prompt_messages([{"role": "human", "content": None}]) == [{"role": "user", "content": ""}]
    assert prompt_messages(None) == []
    assert completion_messages(" Because of Rayleigh scattering. ") == [
        {"role": "assistant", "content": "Because of Rayleigh scattering."}
    ]


def test_without_a_chat_template_the_rendering_is_hh_text_as_before(tiny_tokenizer):
    for tok in (None, tiny_tokenizer):
        assert render_chat(tok, HH, " Sure.") == (HH, " Sure.")
        assert format_prompt(MESSAGES, tok) == HH
        assert format_completion("Sure.", MESSAGES, tok) == " Sure."
        assert format_completion([{"role": "assistant", "content": "Sure."}], MESSAGES, tok) == " Sure."


def test_the_tiny_fixtures_hh_template_renders_text_and_chat_prompts_alike():
    from rlhf.training.causal_defaults import build_bpe_tokenizer

    tok = build_bpe_tokenizer([HH, "Sure."], vocab_size=300)
    assert format_prompt(HH, tok) == format_prompt(MESSAGES, tok) == HH
    assert format_completion("Sure.", HH, tok) == " Sure."


@pytest.mark.slow
def test_smollm2_renders_hh_text_with_its_chatml_template(smollm2_tokenizer):
    tok = smollm2_tokenizer
    prompt, completion = render_chat(tok, HH, " Why did the chicken cross the road?")

    assert prompt == tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nTell me a joke.<|im_end|>\n<|im_start|>assistant\n")
    assert completion == "Why did the chicken cross the road?<|im_end|>"
    assert prompt == format_prompt(MESSAGES, tok)  # text and chat prompts render alike


@pytest.mark.slow
def test_smollm2_prompt_plus_completion_is_the_template_of_the_whole_conversation(smollm2_tokenizer):
    tok = smollm2_tokenizer
    reply = {"role": "assistant", "content": "A short joke."}
    full = tok.apply_chat_template([*MESSAGES, reply], tokenize=False)

    for completion in ("A short joke.", [reply]):
        prompt, text = render_chat(tok, MESSAGES, completion)
        assert prompt + text == full.removesuffix("\n") and text.endswith("<|im_end|>")


@pytest.mark.slow
def test_smollm2_sequences_end_with_exactly_one_end_of_turn(smollm2_tokenizer):
    from rlhf.training.sft import encode_demonstrations

    tok = smollm2_tokenizer
    (seq,), _ = encode_sequences(tok, [HH], [" A joke."], max_length=256)
    assert seq[-1] == tok.eos_token_id and seq[-2] != tok.eos_token_id
    assert tok.decode(seq).endswith("<|im_start|>assistant\nA joke.<|im_end|>")

    (item,) = encode_demonstrations(tok, [(HH, " A joke.")], max_length=256, max_prompt_length=128)
    assert item["input_ids"][-1] == tok.eos_token_id and item["input_ids"][-2] != tok.eos_token_id
    assert tok.decode([t for t, m in zip(item["input_ids"], item["completion_mask"], strict=True) if m]) == (
        "A joke.<|im_end|>"
    )
