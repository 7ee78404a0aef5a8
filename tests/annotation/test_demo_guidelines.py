"""The demo guidelines describe the rank rule the page and the server enforce: dense ranks, ties share a rank."""

import re

from annotation.demo import GUIDELINES
from annotation.ranking_rules import ranking_errors


def _example_tables(markdown: str) -> list[list[int]]:
    """The 'Rank' column of every markdown table in the text, one list of ints per table."""
    tables, current, rank_col = [], None, None
    for line in markdown.splitlines() + [""]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            if current:
                tables.append(current)
            current, rank_col = None, None
        elif current is None:
            rank_col, current = (cells.index("Rank"), []) if "Rank" in cells else (None, None)
        elif rank_col is not None and not set(cells[rank_col]) <= set("-: "):
            current.append(int(cells[rank_col]))
    return tables


def test_every_ranked_example_in_the_demo_guidelines_is_a_valid_dense_ranking():
    tables = _example_tables(GUIDELINES)
    assert tables, "the guidelines have no ranked example table any more: update this test"
    for ranks in tables:
        by_response = dict(enumerate(ranks))
        assert ranking_errors(by_response, list(by_response)) == [], ranks
    assert [1, 1, 2, 3] in tables  # the example with a tie at the top: the next rank follows without a gap


def test_demo_guidelines_state_the_dense_rank_rule_with_the_pages_example():
    ties = GUIDELINES.split("## Ties", 1)[1].split("\n## ", 1)[0]
    text = " ".join(ties.split())
    assert "Ranks must be dense" in text and "without a gap" in text
    assert "1, 2, 2, 3" in text  # the example the page's own error message gives
    assert "if two responses share rank 1, the next one is rank 2" in text


def test_demo_guidelines_never_give_a_gapped_ranking_as_valid():
    """Rank lists in prose ('1, 2, 2, 3') are dense unless the sentence says they are refused or wrong."""
    for match in re.finditer(r"\b\d(?:, \d)+\b", GUIDELINES):
        ranks = [int(r) for r in match.group().split(", ")]
        before = GUIDELINES[max(0, match.start() - 30) : match.start()]
        if ranking_errors(dict(enumerate(ranks)), list(range(len(ranks)))):
            assert re.search(r"\b(not|refuses|such as)\b", before), f"gapped ranks {ranks} read as valid"
