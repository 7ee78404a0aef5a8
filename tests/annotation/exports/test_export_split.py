"""Train/test split: deterministic by prompt, seeded, near-duplicates (MinHash) always on one side."""

import numpy as np
import pytest

from annotation.exports import (
    MIN_TEST_GROUPS,
    PromptSplitter,
    lsh_bands,
    lsh_candidates,
    min_test_groups,
    near_duplicate_groups,
    shingle_hashes,
    signatures,
    text_hash,
)

WORDS = [chr(ord("a") + i) * 3 for i in range(26)]  # aaa, bbb, ... zzz


def sentence(seed: int, n_words: int = 60) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(f"{WORDS[i]}{j}" for i, j in zip(rng.integers(0, 26, n_words), rng.integers(0, 50, n_words)))


def split(texts: list[str], **kwargs):
    splitter = PromptSplitter(**({"test_ratio": 0.5, "seed": 0} | kwargs))
    splitter.add_all(enumerate(texts, start=1), chunk=7)
    return splitter.finish()


def test_split_is_deterministic_and_depends_on_the_seed_and_ratio():
    texts = [sentence(i) for i in range(300)]

    first, again = split(texts), split(list(texts))
    other_seed = split(texts, seed=1)

    assert np.array_equal(first.is_test, again.is_test) and np.array_equal(first.ids, np.arange(1, 301))
    assert not np.array_equal(first.is_test, other_seed.is_test)
    assert 0.4 < first.is_test.mean() < 0.6
    assert split(texts, test_ratio=0.0).is_test.sum() == 0 and split(texts, test_ratio=1.0).is_test.all()
    assert 0.05 < split(texts, test_ratio=0.1).is_test.mean() < 0.16


def test_prompts_differing_by_one_word_land_on_the_same_side_for_every_seed():
    base = sentence(1, 120)  # one changed word changes 5 of 116 shingles: Jaccard 111 / 121 = 0.92
    variant = base.replace(base.split()[60], "changed", 1)
    texts = [base, variant] + [sentence(i) for i in range(2, 40)]

    for seed in range(40):
        result = split(texts, seed=seed)
        assert result.side(1) == result.side(2), seed
    grouped = split(texts)
    assert grouped.group[0] == grouped.group[1] and grouped.n_groups_merged == 1 and grouped.n_prompts_merged == 2
    # without near-duplicate grouping (threshold 1: exact duplicates only) the pair is split for some seed
    assert any(split(texts, seed=s, threshold=1.0).side(1) != split(texts, seed=s, threshold=1.0).side(2)
               for s in range(40))  # fmt: skip


def test_exact_duplicates_and_case_or_punctuation_variants_are_grouped():
    texts = ["What is the capital of France?", "what is the capital of france", "What is the capital of Spain?"]

    groups = split(texts).group

    assert groups[0] == groups[1] != groups[2]


def test_unrelated_prompts_stay_in_their_own_groups_and_rarely_share_a_band():
    sigs = signatures([sentence(i, 30) for i in range(3000)])

    assert len(np.unique(near_duplicate_groups(sigs, 0.8))) == 3000
    assert len(lsh_candidates(sigs, 0.8)[0]) < 30  # band keys hash all their values (a sum would collide often)


def test_minhash_estimates_jaccard_of_word_five_shingles():
    base = sentence(7, 100)
    words = base.split()
    variant = " ".join(words[:50] + ["new"] + words[51:])  # 5 of 96 shingles change: J = 91 / 101

    sigs = signatures([base, variant])

    assert abs((sigs[0] == sigs[1]).mean() - 91 / 101) < 0.08


def test_shingles_of_short_and_empty_texts():
    hashes, offsets = shingle_hashes(["a b c d e f", "a b", "", "A, b!"])

    assert offsets.tolist() == [0, 2, 3, 4]
    assert hashes[2] == hashes[4] and hashes[3] == 0  # "a b" == "A, b!"; the empty text is one shingle


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_lsh_bands_match_datasketch_choices(threshold):
    from datasketch.lsh import _optimal_param

    assert lsh_bands(threshold) == _optimal_param(threshold, 128, 0.1, 0.9)
    assert lsh_bands(threshold, 128, 0.5, 0.5) == _optimal_param(threshold, 128, 0.5, 0.5)


def test_jaccard_estimate_agrees_with_datasketch_minhash():
    from datasketch import MinHash

    base = sentence(3, 80).split()
    variant = base[:20] + ["x", "y"] + base[22:60]
    ours = signatures([" ".join(base), " ".join(variant)])
    theirs = []
    for words in (base, variant):
        minhash = MinHash(num_perm=256, seed=1)
        minhash.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
        theirs.append(minhash)

    assert abs((ours[0] == ours[1]).mean() - theirs[0].jaccard(theirs[1])) < 0.1


def _unlucky(n: int, ratio: float) -> list[str]:
    """n prompts none of which the hash threshold puts into the test split at this ratio (seed 0)."""
    texts = (sentence(i) for i in range(10_000))
    return [t for t in texts if text_hash(t, 0) / 2.0**64 >= ratio][:n]


def test_a_small_project_the_hash_holds_out_nothing_of_still_gets_a_test_split():
    texts = _unlucky(27, 0.1)
    hashes = np.array([text_hash(t, 0) for t in texts], dtype=np.uint64)

    result = split(texts, test_ratio=0.1)

    assert result.is_test.sum() == min_test_groups(27, 0.1) == MIN_TEST_GROUPS == 3
    # the next groups the threshold would take: the smallest seeded hashes, deterministically
    assert set(np.flatnonzero(result.is_test).tolist()) == set(np.argsort(hashes)[:3].tolist())
    assert np.array_equal(split(list(texts), test_ratio=0.1).is_test, result.is_test)
    assert split(texts, test_ratio=0.0).is_test.sum() == 0  # ratio 0: no test split at all


@pytest.mark.parametrize(
    ("groups", "ratio", "expected"),
    [(27, 0.1, 3), (5, 0.1, 1), (10, 0.2, 2), (2, 0.1, 1), (1, 0.5, 0), (1000, 0.1, 3), (30, 0.0, 0), (4, 1.0, 3)],
)
def test_min_test_groups_is_min_of_three_and_the_ratio_and_leaves_a_training_group(groups, ratio, expected):
    assert min_test_groups(groups, ratio) == expected


def test_the_floor_keeps_near_duplicates_together_and_never_empties_training():
    texts = _unlucky(4, 0.1)
    texts = [texts[0], texts[0] + " again", *texts[1:]]  # the same prompt twice (Jaccard ~0.97): one group
    result = split(texts, test_ratio=0.1)
    assert result.side(1) == result.side(2) and 1 <= result.is_test.sum() <= 2  # 4 groups: 1 held out
    assert split(_unlucky(1, 0.5), test_ratio=0.5).is_test.sum() == 0  # the floor leaves a lone prompt in training


def test_a_large_project_keeps_the_pure_hash_split():
    texts = [sentence(i) for i in range(300)]
    result = split(texts, test_ratio=0.1)
    by_hash = np.array([text_hash(t, 0) / 2.0**64 < 0.1 for t in texts])  # no near duplicates among them
    assert np.array_equal(result.is_test, by_hash) and by_hash.sum() >= 3
