"""Template helpers for the annotation pages: sanitised markdown, response letters, a ranking as 'B > A = C'."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

LETTERS = "ABCDEFGHIJ"
# Plain links and mail only: no javascript:, data: or other schemes that could run code.
SAFE_URL_SCHEMES = {"http", "https", "mailto"}
MARKDOWN_EXTENSIONS = ["extra", "sane_lists"]


def render_markdown(text: str) -> str:
    """Markdown to HTML, then sanitised by nh3 (no scripts, no event handlers, no javascript: URLs)."""
    html = markdown_lib.markdown(text or "", extensions=MARKDOWN_EXTENSIONS)
    return nh3.clean(html, url_schemes=SAFE_URL_SCHEMES)


@register.filter
def markdown_safe(text: str) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitised by nh3 just above


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
