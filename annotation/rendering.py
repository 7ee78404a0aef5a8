"""Untrusted text (prompts, responses, guidelines, rationales) as safe HTML: markdown, then an allow-list sanitiser.

Two layers, each enough on its own:
1. markdown-it-py with raw HTML off: `<script>` in a response is shown as the text `<script>`, which is also what a
   labeler must see when an answer is *about* HTML. Links are made for http(s), mailto and relative URLs only;
   images are not loaded (an external image would track the labeler and fail offline), they stay links.
2. nh3 (ammonia) keeps only the tags and attributes markdown produces, drops every other URL scheme and gives every
   link rel="noopener nofollow".

Fenced code with a language Pygments knows is highlighted on the server (classes only; the colours are in
static/annotation/highlight.css), so no script runs in the page to do it. LaTeX between dollars ($x^2$ inline,
$$…$$ as a block; mdit-py-plugins' dollarmath, with "$5 and $10" left as text) becomes MathML on the server
(latex2mathml), which the browser draws natively: no KaTeX script in the page, and the MathML goes through the same
allow-list. Pure module: no Django imports.
"""

import html
from functools import lru_cache

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener nofollow"
CODE_BLOCK_CLASS = "highlight"
HIGHLIGHT_STYLE = "default"
# A text is rendered once per process; the cache is bounded because a text may be up to 50,000 characters.
CACHE_SIZE = 1024

MATHML_TAGS = frozenset(
    {"math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot",
     "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "menclose", "mpadded", "mphantom"}
)  # fmt: skip
MATHML_ATTRIBUTES = {
    "math": {"display", "xmlns"}, "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop",
    "movablelimits", "symmetric", "minsize", "maxsize", "accent"}, "mi": {"mathvariant"}, "mn": {"mathvariant"},
    "mtext": {"mathvariant"}, "mstyle": {"displaystyle", "scriptlevel", "mathvariant"}, "mspace": {"width"},
    "mfrac": {"linethickness"}, "mover": {"accent"}, "munder": {"accentunder"}, "menclose": {"notation"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"}, "mtd": {"columnalign"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
}  # fmt: skip
ALLOWED_TAGS = frozenset(
    {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em",
     "strong", "s", "a", "table", "thead", "tbody", "tr", "th", "td", "span"}
) | MATHML_TAGS  # fmt: skip
MAX_MATH_CHARS = 2000  # longer "formulas" are shown as the text they are
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}} | MATHML_ATTRIBUTES
ALLOWED_CLASSES = {"pre": {CODE_BLOCK_CLASS}, "span": {cls for cls in STANDARD_TYPES.values() if cls}}
ALLOWED_STYLE_PROPERTIES = frozenset({"text-align"})  # table column alignment, nothing else

_formatter = HtmlFormatter(nowrap=True)


def _link_is_safe(url: str) -> bool:
    scheme, colon, _ = url.strip().partition(":")
    if not colon or "/" in scheme or "?" in scheme or "#" in scheme:
        return True  # relative: "/path", "page#part", "?q=1:2"
    return scheme.lower() in SAFE_URL_SCHEMES


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments spans for a known language; "" lets markdown-it escape the block as plain code."""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    spans = highlight(code, lexer, _formatter)
    return f'<pre class="{CODE_BLOCK_CLASS}"><code>{spans}</code></pre>'


def _math(content: str, options: dict) -> str:
    """MathML for a $…$ or $$…$$ formula; what latex2mathml cannot read is shown as the source, escaped."""
    display = bool(options.get("display_mode"))
    fence = "$$" if display else "$"
    try:
        if len(content) > MAX_MATH_CHARS:
            raise ValueError("too long")
        mathml = latex_to_mathml(content, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any parse failure: show the source instead
        return f"<code>{html.escape(fence + content + fence)}</code>"
    return f"<p>{mathml}</p>" if display else mathml


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "highlight": _highlight})
    # allow_space/allow_digits off: "$5 and $10" (prices) stays text, as does "$ x $".
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, allow_labels=False, renderer=_math)
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = _link_is_safe
    return md


_md = _markdown()


def sanitize_html(fragment: str) -> str:
    """Keep only the markup markdown produces; safe URLs only; rel="noopener nofollow" on links."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        allowed_classes={tag: set(names) for tag, names in ALLOWED_CLASSES.items()},
        filter_style_properties=set(ALLOWED_STYLE_PROPERTIES),
        url_schemes=set(SAFE_URL_SCHEMES),
        link_rel=LINK_REL,
    )


@lru_cache(maxsize=CACHE_SIZE)
def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML (cached per text)."""
    return sanitize_html(_md.render(text or ""))


def highlight_css() -> str:
    """The stylesheet for highlighted code, static/annotation/highlight.css (a test keeps the file in step)."""
    formatter = HtmlFormatter(style=HIGHLIGHT_STYLE)
    rules = formatter.get_background_style_defs(f".{CODE_BLOCK_CLASS}")
    rules += formatter.get_token_style_defs(f".{CODE_BLOCK_CLASS}")
    header = f"/* Generated by annotation.rendering.highlight_css(): Pygments' {HIGHLIGHT_STYLE!r} style. */"
    return "\n".join([header, *rules]) + "\n"


def render_plain(text: str) -> str:
    """The text as it is, escaped (shown with white-space: pre-wrap)."""
    return html.escape(text or "")
