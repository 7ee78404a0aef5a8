import numpy as np
import pytest

from annotation.agreement import (
    alpha_ci,
    bootstrap_ci,
    kendall_w_mean,
    kendall_w_mean_ci,
    krippendorff_alpha,
    pairwise_agreement,
    pairwise_agreement_ci,
    resample_table,
)
from annotation.agreement.bootstrap import resampled_prompts


def test_bootstrap_ci_is_deterministic_for_a_seed(random_table):
    table = random_table(seed=1)

    first = bootstrap_ci(table, pairwise_agreement, n_boot=50, seed=3)

    assert bootstrap_ci(table, pairwise_agreement, n_boot=50, seed=3) == first
    assert bootstrap_ci(table, pairwise_agreement, n_boot=50, seed=4) != first


def test_resampled_prompts_do_not_depend_on_the_chunk_size():
    whole = np.concatenate(list(resampled_prompts(50, 7, seed=2, chunk=7)))
    pieces = np.concatenate(list(resampled_prompts(50, 7, seed=2, chunk=3)))

    assert np.array_equal(whole, pieces)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_ci_matches_the_generic_table_bootstrap(random_table, level):
    table = random_table(seed=2, incomplete=0.2)

    generic = bootstrap_ci(table, lambda t: krippendorff_alpha(t, level), n_boot=40, seed=5)

    assert alpha_ci(table, level, n_boot=40, seed=5) == pytest.approx(generic, abs=1e-12)


def test_pairwise_and_kendall_cis_match_the_generic_table_bootstrap(random_table):
    table = random_table(seed=3)

    assert pairwise_agreement_ci(table, "outcome", n_boot=40, seed=6) == pytest.approx(
        bootstrap_ci(table, lambda t: pairwise_agreement(t, "outcome"), n_boot=40, seed=6), abs=1e-12
    )
    assert kendall_w_mean_ci(table, n_boot=40, seed=6) == pytest.approx(
        bootstrap_ci(table, kendall_w_mean, n_boot=40, seed=6), abs=1e-12
    )


def test_bootstrap_intervals_contain_the_estimate(random_table):
    table = random_table(seed=4, n_prompts=150, per_prompt=(2, 5))

    low, high = alpha_ci(table, n_boot=300)
    assert low < krippendorff_alpha(table) < high
    low, high = pairwise_agreement_ci(table, n_boot=300)
    assert low < pairwise_agreement(table) < high
    low, high = kendall_w_mean_ci(table, n_boot=300)
    assert low < kendall_w_mean(table) < high


def test_resample_table_turns_a_prompt_drawn_twice_into_two_prompts(random_table):
    table = random_table(seed=5)
    prompt = int(table.prompt[0])
    rows = int((table.prompt == prompt).sum())

    twice = resample_table(table, np.array([prompt, prompt]))

    assert twice.n_rows == 2 * rows
    assert twice.prompt.tolist() == [0] * rows + [1] * rows
    assert set(twice.response[:rows]).isdisjoint(twice.response[rows:])
    assert np.array_equal(twice.rank[:rows], twice.rank[rows:])


def test_resample_table_with_every_prompt_once_keeps_the_statistics(random_table):
    table = random_table(seed=6)

    same = resample_table(table, np.unique(table.prompt))

    assert krippendorff_alpha(same) == pytest.approx(krippendorff_alpha(table))
    assert pairwise_agreement(same) == pytest.approx(pairwise_agreement(table))
