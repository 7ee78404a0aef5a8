"""annotation.rendering: markdown renders, untrusted markup never survives, links are safe, the CSS is in step."""

from pathlib import Path

import pytest

from annotation.rendering import highlight_css, render_markdown, render_plain, sanitize_html

ROOT = Path(__file__).resolve().parents[2]


def test_headings_lists_emphasis_and_line_breaks_render():
    html = render_markdown("# Title\n\n- one\n- two\n\n1. first\n2. second\n\n**bold** *it* ~~gone~~\nnext line")
    assert "<h1>Title</h1>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n<li>second</li>\n</ol>" in html
    assert "<strong>bold</strong> <em>it</em> <s>gone</s><br>\nnext line" in html  # a single newline is a break


def test_tables_render_with_column_alignment_kept():
    html = render_markdown("| name | score |\n|---|--:|\n| a | 1 |")
    assert "<table>" in html and "<th>name</th>" in html
    assert '<td style="text-align:right">1</td>' in html


def test_fenced_code_is_highlighted_on_the_server_with_token_classes():
    html = render_markdown("```python\ndef f():\n    return 1\n```")
    assert html.startswith('<pre class="highlight"><code>')
    assert '<span class="k">def</span>' in html and '<span class="nf">f</span>' in html


def test_code_in_an_unknown_language_and_inline_code_are_escaped_not_run():
    html = render_markdown("```nosuchlang\n<script>alert(1)</script>\n```\n\nuse `<b>x</b>` here")
    assert "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>" in html
    assert "<code>&lt;b&gt;x&lt;/b&gt;</code>" in html


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<iframe src="https://example.com"></iframe>',
        "<style>body { display: none }</style>",
        '<svg onload="alert(1)"><circle r="5"/></svg>',
        '<a href="javascript:alert(1)">x</a>',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    ],
)
def test_raw_html_in_markdown_is_shown_as_text_never_as_markup(payload):
    html = render_markdown(f"before {payload} after")
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "<style" not in html
    assert "<svg" not in html and "<math" not in html and "<a" not in html
    assert "&lt;" in html  # the labeler sees the markup as written


@pytest.mark.parametrize(
    "fragment, expected",
    [
        ("<p>hi</p><script>alert(1)</script>", "<p>hi</p>"),
        ('<img src=x onerror="alert(1)">ok', "ok"),
        ('<p onclick="alert(1)" onmouseover="alert(2)">p</p>', "<p>p</p>"),
        ('<iframe src="https://example.com"></iframe>ok', "ok"),
        ("<style>body { display: none }</style>ok", "ok"),
        ('<svg onload="alert(1)"><circle r="5"/></svg>ok', "ok"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener nofollow">x</a>'),
        ('<a href="data:text/html,<script>alert(1)</script>">x</a>', '<a rel="noopener nofollow">x</a>'),
        ('<a href="https://e.org" target="_blank">x</a>', '<a href="https://e.org" rel="noopener nofollow">x</a>'),
        ('<span class="k evil">k</span>', '<span class="k">k</span>'),
        ('<td style="text-align:left; position: fixed">c</td>', "c"),
        ('<table><tr><td style="position: fixed; text-align:left">c</td></tr></table>', "text-align:left"),
    ],
)
def test_sanitiser_keeps_only_markdown_markup(fragment, expected):
    """The second layer on its own, with markup markdown-it would never emit."""
    cleaned = sanitize_html(fragment)
    assert expected in cleaned
    for bad in ("<script", "onerror", "onclick", "<iframe", "<style", "<svg", "javascript:", "data:", "position"):
        assert bad not in cleaned


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "vbscript:x"])
def test_markdown_links_to_unsafe_schemes_stay_text(url):
    html = render_markdown(f"[click]({url}) and <{url}>")
    assert "<a" not in html and "href" not in html


@pytest.mark.parametrize("url", ["https://example.com/a?b=1", "http://example.com", "mailto:me@example.com", "/docs/"])
def test_safe_links_render_with_rel_noopener_nofollow(url):
    html = render_markdown(f"[click]({url})")
    assert f'<a href="{url.replace("&", "&amp;")}" rel="noopener nofollow">click</a>' in html


def test_images_are_not_loaded_but_kept_as_links():
    html = render_markdown("![tracker](https://example.com/pixel.png)")
    assert "<img" not in html
    assert '<a href="https://example.com/pixel.png" rel="noopener nofollow">tracker</a>' in html


def test_rendering_is_cached_per_text():
    render_markdown.cache_clear()
    render_markdown("same *text*")
    render_markdown("same *text*")
    assert render_markdown.cache_info().hits == 1


def test_plain_text_is_escaped_verbatim():
    assert render_plain("# not a heading\n<b>x</b>") == "# not a heading\n&lt;b&gt;x&lt;/b&gt;"


def test_shipped_highlight_css_matches_the_pinned_pygments():
    shipped = (ROOT / "static" / "annotation" / "highlight.css").read_text(encoding="utf-8")
    assert shipped == highlight_css(), "regenerate it from annotation.rendering.highlight_css()"


def test_latex_between_dollars_becomes_mathml_and_prices_stay_text():
    from annotation.rendering import render_markdown

    out = render_markdown(r"Area: $\pi r^2$, and it costs $5 and $10.")
    assert "<math" in out and "<msup><mi>r</mi><mn>2</mn></msup>" in out
    assert "costs $5 and $10." in out
    block = render_markdown("$$\\frac{a}{b}$$")
    assert 'display="block"' in block and "<mfrac>" in block
    assert "<code>$\\begin{foo$</code>" in render_markdown(r"$\begin{foo$")  # unreadable: the source, as code


def test_math_cannot_smuggle_markup_or_links():
    from annotation.rendering import render_markdown

    for text in [r"$<img src=x onerror=alert(1)>$", r"$\href{javascript:alert(1)}{x}$", "$x$<svg onload=alert(1)>",
                 r"$\style{color:red}{x}$", "$" + "x^" * 3000 + "$"]:  # fmt: skip
        out = render_markdown(text)
        assert "<img" not in out and "javascript:" not in out and "onerror" not in out.replace("&lt;", "")
        assert "<svg" not in out and "href" not in out and "style=" not in out
