"""Tests of pipeline.cv.duplicates: exact and near-duplicate texts on tiny in-file corpora."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cv.duplicates import (
    exact_keys,
    near_duplicate_groups,
    nearest_similarity,
    similar_pairs,
    text_vectors,
)

CORPUS = [
    "the senate passed the budget bill on tuesday after a long debate",  # 0
    "The Senate passed the budget bill on Tuesday after a long debate!",  # 1 exact (case, punct.)
    "the senate passed the budget bill on tuesday after a short debate",  # 2 near 0
    "scientists found water on a distant moon orbiting saturn",  # 3
    "a recipe for lemon cake with fresh berries and cream",  # 4
    "scientists found water on a distant moon orbiting saturn last year",  # 5 near 3
    "",  # 6 empty
]


def _brute_force(X, threshold):
    sims = (X @ X.T).toarray()
    i, j = np.nonzero(np.triu(sims >= threshold - 1e-6, k=1))
    return set(zip(i.tolist(), j.tolist()))


def test_exact_keys_ignore_case_and_whitespace_not_words():
    keys = exact_keys(["A  b c", "a b\tC", "a b d", "", ""])
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] != keys[4]  # empty texts duplicate nothing


def test_near_duplicate_groups_join_rewrites_only():
    groups = near_duplicate_groups(CORPUS, 0.6)
    assert groups[0] == groups[1] == groups[2]
    assert groups[3] == groups[5]
    assert len({groups[0], groups[3], groups[4], groups[6]}) == 4


def test_groups_are_connected_components_of_chains():
    # a~b and b~c but a and c are far apart: one group all the same
    a = "w1 w2 w3 w4 w5 w6 w7 w8"
    b = "w1 w2 w3 w4 w5 w6 x7 x8"
    c = "w1 w2 w3 w4 y5 y6 x7 x8"
    X = text_vectors([a, b, c])
    sims = (X @ X.T).toarray()
    threshold = (sims[0, 1] + sims[0, 2]) / 2
    assert sims[1, 2] >= threshold > sims[0, 2]
    groups = near_duplicate_groups([a, b, c], threshold)
    assert groups[0] == groups[1] == groups[2]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8, 1.0])
def test_similar_pairs_match_brute_force(threshold):
    rng = np.random.default_rng(0)
    vocab = [f"w{k}" for k in range(30)]
    base = [" ".join(rng.choice(vocab, 12)) for _ in range(40)]
    texts = base + [t.rsplit(" ", 2)[0] for t in base[:20]] + ["w1 w2", "w1 w2 w3"]
    X = text_vectors(texts)
    i, j, cos = similar_pairs(X, threshold, common_df=0.0)  # forces the common-column path
    assert set(zip(i.tolist(), j.tolist())) == _brute_force(X, threshold)
    np.testing.assert_allclose(cos, [(X[a] @ X[b].T).toarray()[0, 0] for a, b in zip(i, j)], atol=1e-5)


def test_similar_pairs_rejects_a_bad_threshold():
    with pytest.raises(ValueError, match="threshold must lie in"):
        similar_pairs(text_vectors(CORPUS), 1.5)


def test_nearest_similarity_respects_the_mask():
    X = text_vectors(CORPUS)
    own = np.arange(len(CORPUS))
    anyone_else = lambda r, c: own[c] != r  # noqa: E731
    same_parity = lambda r, c: (own[c] != r) & (c % 2 == r % 2)  # noqa: E731
    nearest, parity = nearest_similarity(X[:3], X, [anyone_else, same_parity])
    assert nearest[0] == pytest.approx(1.0, abs=1e-5)  # row 1 is row 0's exact copy
    assert parity[0] < 1.0 and parity[0] == pytest.approx((X[0] @ X[2].T).toarray()[0, 0], abs=1e-5)


def test_all_empty_texts_have_no_duplicates():
    groups = near_duplicate_groups(["", "", ""], 0.5)
    assert len(set(groups)) == 3
