"""One rendering of a conversation for every stage: training, evaluation, scoring and generation.

A prompt is HH-RLHF text ("\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nHuman: ...\\n\\nAssistant:"), plain text (one user
turn) or chat messages ([{role, content}]); a completion is text or a list of assistant messages. Both become
messages, and `render_chat` renders them:

- with the tokenizer's chat template when it has one (SmolLM2's ChatML, a Hub chat model's own): the prompt ends with
  the template's generation prompt ("<|im_start|>assistant\\n") and the completion with its end of turn
  ("<|im_end|>"), so prompt + completion is exactly what the template makes of the whole conversation (less the
  newline after the last end of turn);
- without one (BERT/MiniLM, the tiny BERT fixture): HH-style text as before: a text prompt unchanged, chat prompts as
  "\\n\\nHuman: ...\\n\\nAssistant:" turns, the completion after it.

Plain Python, no Django.
"""

import re
from typing import Any

ROLE_LABELS = {"system": "System", "user": "Human", "human": "Human", "assistant": "Assistant"}
HH_ROLES = {"Human": "user", "Assistant": "assistant", "System": "system"}
HH_TURN = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant|System):[ \t]?")


def is_chat(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def has_chat_template(tokenizer: Any) -> bool:
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def _message(role: str, content: Any) -> dict[str, str]:
    role = {"human": "user"}.get(str(role).lower(), str(role).lower())
    return {"role": role, "content": "" if content is None else str(content)}


def _merged(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Consecutive turns of one role become one turn (chat templates expect alternating roles)."""
    out: list[dict[str, str]] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n\n{message['content']}".strip()}
        else:
            out.append(message)
    return out


def hh_to_messages(text: str) -> list[dict[str, str]]:
    """HH-RLHF dialogue text -> messages. The trailing empty "Assistant:" (the turn to be written) is dropped; text
    before the first marker, or text with no marker at all, is a user turn."""
    parts = HH_TURN.split(str(text))
    messages = [_message("user", parts[0].strip())] if parts[0].strip() else []
    for label, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append(_message(HH_ROLES[label], content.strip()))
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return _merged([m for m in messages if m["content"] or m["role"] == "user"])


def prompt_messages(prompt: Any) -> list[dict[str, str]]:
    """A prompt (HH text, plain text or chat messages) as chat messages."""
    if prompt is None or prompt == "":
        return []
    if is_chat(prompt):
        return [_message(m["role"], m.get("content")) for m in prompt]
    return hh_to_messages(str(prompt))


def completion_messages(completion: Any) -> list[dict[str, str]]:
    """A completion (text or assistant messages) as chat messages."""
    if is_chat(completion):
        return [_message(m["role"], m.get("content")) for m in completion]
    return [_message("assistant", str(completion).strip())]


def _hh_turns(messages: list[dict[str, Any]]) -> str:
    return "".join(f"\n\n{ROLE_LABELS.get(m['role'], m['role'].title())}: {m.get('content') or ''}" for m in messages)


def hh_prompt_text(prompt: Any) -> str:
    """The template-free rendering: a text prompt as it is, chat messages as HH turns ending with "Assistant:"."""
    if prompt is None:
        return ""
    if not is_chat(prompt):
        return str(prompt)
    return _hh_turns(prompt) + "\n\nAssistant:"


def hh_completion_text(completion: Any, prompt: Any = None) -> str:
    """The template-free completion, written so that hh_prompt_text(p) + hh_completion_text(c, p) reads as one
    dialogue."""
    if not is_chat(completion):
        text = str(completion)
        return text if not is_chat(prompt) or text.startswith((" ", "\n")) else " " + text
    first, rest = completion[0], completion[1:]
    return " " + (first.get("content") or "") + _hh_turns(rest)


def _end_of_turn(text: str, tokenizer: Any) -> str:
    """Cut what the template adds after the last end of turn (ChatML: a newline), so a completion ends with it."""
    eos = getattr(tokenizer, "eos_token", None)
    if eos and eos in text:
        return text[: text.rindex(eos) + len(eos)]
    return text


def render_chat(tokenizer: Any, prompt: Any, completion: Any = None) -> tuple[str, str]:
    """(prompt text, completion text) for one conversation, as every stage renders it: through the tokenizer's chat
    template when it has one (the prompt ends with the generation prompt, the completion with the end of turn), else
    as HH-style text. Without a completion the second item is ""."""
    if not has_chat_template(tokenizer):
        return hh_prompt_text(prompt), ("" if completion is None else hh_completion_text(completion, prompt))
    messages = prompt_messages(prompt) or [_message("user", "")]
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if completion is None:
        return head, ""
    reply = completion_messages(completion)
    full = tokenizer.apply_chat_template(messages + reply, tokenize=False)
    if full.startswith(head):
        return head, _end_of_turn(full[len(head) :], tokenizer)
    # A template that renders an answered conversation differently from an open one (e.g. one that drops reasoning
    # from earlier turns): the reply's own text, closed by the end of turn.
    return head, "\n\n".join(m["content"] for m in reply) + (getattr(tokenizer, "eos_token", None) or "")
