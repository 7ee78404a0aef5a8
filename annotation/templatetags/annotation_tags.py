"""Template helpers for the annotation pages: sanitised markdown, response letters, a ranking as 'B > A = C'."""

from django import template
from django.utils.safestring import mark_safe

from annotation.rendering import render_markdown, render_plain

register = template.Library()

LETTERS = "ABCDEFGHIJ"


@register.filter
def markdown_safe(text: str) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitised by nh3 in annotation.rendering


@register.filter
def rendered(text: str, as_markdown: bool = True) -> str:
    """A prompt, response or rationale as the project shows it: rendered markdown, or the plain text escaped."""
    return mark_safe(render_markdown(text) if as_markdown else render_plain(text))  # noqa: S308 - sanitised/escaped


@register.filter
def letter(position: int) -> str:
    """0 -> 'A', 1 -> 'B', ... (responses are shown to labelers by letter, never by model)."""
    try:
        return LETTERS[int(position)]
    except (IndexError, TypeError, ValueError):
        return "?"


def ranking_order(entries) -> str:
    """Entries (rank, shown_position) as the labeler's judgment, best first: 'B > A = D > C'."""
    by_rank: dict[int, list[str]] = {}
    for entry in sorted(entries, key=lambda e: (e.rank, e.shown_position)):
        by_rank.setdefault(entry.rank, []).append(letter(entry.shown_position))
    return " > ".join(" = ".join(group) for _, group in sorted(by_rank.items()))


@register.filter(name="ranking_order")
def ranking_order_filter(ranking) -> str:
    return ranking_order(ranking.entries.all())
