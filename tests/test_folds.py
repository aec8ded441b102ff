"""Tests of pipeline.cv.folds.make_folds: seeded, stratified, robust to rare classes."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from pipeline.cv.folds import make_folds


def _labels(counts: dict[str, int], seed: int = 0) -> np.ndarray:
    """Shuffled labels with the given count per class."""
    y = np.array([label for label, n in counts.items() for _ in range(n)])
    return np.random.default_rng(seed).permutation(y)


def test_same_seed_same_folds():
    y = _labels({"a": 30, "b": 20})
    np.testing.assert_array_equal(make_folds(y, 5, seed=1), make_folds(y, 5, seed=1))


def test_other_seed_other_folds():
    y = _labels({"a": 30, "b": 20})
    assert not np.array_equal(make_folds(y, 5, seed=1), make_folds(y, 5, seed=2))


def test_input_is_not_modified():
    y = _labels({"a": 12, "b": 8})
    before = y.copy()
    make_folds(y, 4, seed=0)
    np.testing.assert_array_equal(y, before)


@pytest.mark.parametrize("n_folds", [2, 3, 5, 10])
def test_every_row_gets_a_fold_in_range(n_folds):
    y = _labels({"a": 37, "b": 23, "c": 11})
    folds = make_folds(y, n_folds, seed=0)
    assert folds.shape == y.shape
    assert np.issubdtype(folds.dtype, np.integer)
    assert folds.min() >= 0 and folds.max() < n_folds
    assert set(folds) == set(range(n_folds))  # no empty fold


@pytest.mark.parametrize(
    "counts, n_folds",
    [
        ({"a": 50, "b": 50}, 5),
        ({"a": 83, "b": 17}, 5),
        ({"a": 40, "b": 31, "c": 9}, 3),
        ({0: 101, 1: 47}, 10),
    ],
)
def test_stratified_class_proportions(counts, n_folds):
    y = _labels(counts)
    folds = make_folds(y, n_folds, seed=3)
    for fold in range(n_folds):
        in_fold = y[folds == fold]
        for label, total in counts.items():
            expected = total * len(in_fold) / len(y)
            assert abs(np.sum(in_fold == label) - expected) <= 1, (fold, label)


def test_fold_sizes_balanced():
    y = _labels({"a": 53, "b": 30})
    sizes = np.bincount(make_folds(y, 5, seed=0), minlength=5)
    assert sizes.max() - sizes.min() <= 2  # at most one row per class


def test_integer_labels():
    y = np.array([0, 1] * 10)
    folds = make_folds(y, 5, seed=0)
    assert np.all(np.bincount(folds) == 4)


def test_rare_class_does_not_crash(caplog):
    y = _labels({"a": 30, "b": 20, "rare": 3})
    with caplog.at_level(logging.WARNING, logger="pipeline.cv.folds"):
        folds = make_folds(y, 5, seed=0)
    assert folds.min() >= 0 and folds.max() < 5
    # the 3 rare rows land in 3 different folds
    assert len(set(folds[y == "rare"])) == 3
    assert "fewer than 5 rows" in caplog.text and "rare" in caplog.text


def test_rare_class_warning_is_logged_not_raised_as_python_warning():
    # make_folds logs its own warning and means to silence scikit-learn's
    # "The least populated class in y has only ... members" UserWarning.
    y = _labels({"a": 30, "b": 20, "rare": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folds = make_folds(y, 5, seed=0)
    assert folds.shape == y.shape


def test_class_with_one_row_does_not_crash():
    y = _labels({"a": 30, "b": 20, "single": 1})
    folds = make_folds(y, 5, seed=0)
    assert folds.shape == y.shape
    assert 0 <= folds[y == "single"][0] < 5


def test_every_class_rare_falls_back():
    y = np.array(["a", "b", "c", "d", "e", "f", "a", "b"])  # no class has 5 rows
    folds = make_folds(y, 5, seed=0)
    assert set(folds) == set(range(5))
    np.testing.assert_array_equal(folds, make_folds(y, 5, seed=0))


def test_exactly_as_many_rows_as_folds():
    folds = make_folds(np.array(["a", "b", "a", "b", "a"]), 5, seed=0)
    assert sorted(folds) == [0, 1, 2, 3, 4]


def test_fewer_rows_than_folds_raises():
    with pytest.raises(ValueError, match="cannot make 5 folds from 3 rows"):
        make_folds(np.array(["a", "b", "a"]), 5, seed=0)


def test_no_rows_raises():
    with pytest.raises(ValueError, match="from 0 rows"):
        make_folds(np.array([], dtype=object), 2, seed=0)


# --- grouped and time-ordered folds -------------------------------------------------------

from pipeline.cv.folds import NOT_VALIDATED, fold_rows, make_group_folds, make_time_folds  # noqa: E402


def test_group_folds_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 40, 200)
    y = (groups % 3 == 0).astype(int)  # label constant within a group
    folds = make_group_folds(y, groups, 5, seed=0)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1, g
    assert set(folds) == set(range(5))


def test_group_folds_stratify_across_groups():
    groups = np.repeat(np.arange(60), 2)
    y = np.repeat(np.arange(60) % 2, 2)
    folds = make_group_folds(y, groups, 3, seed=1)
    for fold in range(3):
        assert abs(y[folds == fold].mean() - 0.5) < 0.1


def test_group_folds_with_singleton_groups_equal_stratified():
    y = _labels({"a": 30, "b": 20})
    np.testing.assert_array_equal(make_group_folds(y, np.arange(50), 5, seed=2), make_folds(y, 5, seed=2))


def test_group_folds_multiclass_with_a_rare_class(caplog):
    y = _labels({"a": 40, "b": 30, "rare": 2})
    groups = np.arange(len(y)) // 2
    with caplog.at_level(logging.WARNING, logger="pipeline.cv.folds"):
        folds = make_group_folds(y, groups, 4, seed=0)
    assert folds.min() >= 0 and folds.max() < 4
    assert "fewer than 4 rows" in caplog.text


def test_group_folds_fewer_groups_than_folds_raises():
    with pytest.raises(ValueError, match="cannot make 5 folds from 3 groups"):
        make_group_folds(np.array([0, 1] * 6), np.arange(12) % 3, 5, seed=0)


def test_time_folds_are_ordered_blocks():
    order = np.random.default_rng(0).permutation(60)
    folds = make_time_folds(order, 5)
    # the earliest block only trains; each later block is one fold, in time order
    assert sorted(set(folds)) == [NOT_VALIDATED, 0, 1, 2, 3, 4]
    blocks = [order[folds == f] for f in [NOT_VALIDATED, 0, 1, 2, 3, 4]]
    for earlier, later in zip(blocks, blocks[1:]):
        assert earlier.max() < later.min()


def test_ordered_fold_rows_train_only_on_the_past():
    folds = make_time_folds(np.arange(30), 2)
    train, valid = fold_rows(folds, 1, ordered=True)
    assert train.max() < valid.min()
    assert set(folds[train]) == {NOT_VALIDATED, 0}


def test_unordered_fold_rows_train_on_every_other_fold():
    folds = np.array([0, 1, 2, 0, 1, 2])
    train, valid = fold_rows(folds, 1)
    assert list(train) == [0, 2, 3, 5] and list(valid) == [1, 4]


def test_rare_class_warning_can_be_silenced(caplog):
    y = _labels({"a": 30, "b": 20, "rare": 3})
    with caplog.at_level(logging.WARNING, logger="pipeline.cv.folds"):
        make_folds(y, 5, seed=0, warn_rare=False)
        make_group_folds(y, np.arange(len(y)) // 2, 5, seed=0, warn_rare=False)
    assert caplog.text == ""
