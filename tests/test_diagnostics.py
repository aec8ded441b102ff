"""Tests of pipeline.cv.diagnostics and pipeline.cv.plan on small in-file corpora: duplicates,
adversarial validation on a shifted and an unshifted split, fold resemblance, the choice of
``auto``, and the loud warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.core.params import parse_params
from pipeline.cv import diagnostics as diag
from pipeline.cv.plan import choose, group_values, plan_folds, time_values

VOCAB = [f"v{k}" for k in range(3000)]


def _story(rng, n_words=40):
    return list(rng.choice(VOCAB, n_words))


def _rewrite(words, rng, share=0.1):
    out = list(words)
    for k in rng.choice(len(out), int(share * len(out)), replace=False):
        out[k] = str(rng.choice(VOCAB))
    return out


def twins(n_stories: int, seed: int = 0):
    """Each story and a light rewrite of it with the other label: (texts, y, story id)."""
    rng = np.random.default_rng(seed)
    texts, y, story = [], [], []
    for s in range(n_stories):
        words, label = _story(rng), s % 2
        texts += [" ".join(words), " ".join(_rewrite(words, rng))]
        y += [label, 1 - label]
        story += [s, s]
    return np.array(texts, dtype=object), np.array(y), np.array(story)


def _frames(texts, y, test_texts):
    train = pd.DataFrame({"text": texts, "y": y})
    return train, pd.DataFrame({"text": test_texts})


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_report_counts_conflicting_twins():
    texts, y, story = twins(30)
    test_texts, _, _ = twins(10, seed=1)
    from pipeline.cv.duplicates import near_duplicate_groups, similar_pairs, text_vectors

    X = text_vectors(list(texts) + list(test_texts))
    groups = near_duplicate_groups(texts, 0.6, X=X[: len(texts)])
    record = diag.duplicate_report(texts, test_texts, y, groups, similar_pairs(X, 0.6)[:2], 0.6)
    assert record["near_groups"] == 30 and record["conflicting_groups"] == 30
    assert record["conflicting_rows"] == 60 and record["near_test_rows_in_train"] == 0
    assert record["warn"] and "conflicting labels" in record["verdict"]


def test_duplicate_report_quiet_without_duplicates():
    rng = np.random.default_rng(3)
    texts = np.array([" ".join(_story(rng)) for _ in range(40)], dtype=object)
    from pipeline.cv.duplicates import near_duplicate_groups, similar_pairs, text_vectors

    X = text_vectors(texts)
    groups = near_duplicate_groups(texts, 0.7, X=X)
    record = diag.duplicate_report(
        texts, np.array([], dtype=object), np.arange(40) % 2, groups, similar_pairs(X, 0.7)[:2], 0.7
    )
    assert record["near_groups"] == 0 and not record["warn"]


# --- adversarial validation -----------------------------------------------------------------


def test_adversarial_unshifted_split_looks_alike():
    rng = np.random.default_rng(0)
    texts = [" ".join(_story(rng)) for _ in range(400)]
    record = diag.adversarial(texts[:300], texts[300:], seed=0, max_rows=1000)
    assert record["auc"] < diag.AUC_ALIKE and not record["warn"]
    assert "look alike" in record["verdict"]


def test_adversarial_shifted_split_is_caught_with_its_features():
    rng = np.random.default_rng(0)
    train = [" ".join(_story(rng)) for _ in range(300)]
    test = [" ".join(_story(rng) + ["covid", "lockdown"]) for _ in range(100)]
    record = diag.adversarial(train, test, seed=0, max_rows=1000)
    assert record["auc"] > diag.AUC_STRONG and record["warn"]
    assert {"covid", "lockdown"} <= set(record["test_features"][:3])
    assert "strong shift" in record["verdict"]


def test_adversarial_keeps_twins_in_one_fold():
    """Test rows whose twins are also in test: ungrouped folds call that a shift, grouped
    folds (near-duplicate groups) do not."""
    texts, _, story = twins(150)
    in_test = story % 4 == 0
    ungrouped = diag.adversarial(texts[~in_test], texts[in_test], seed=0, max_rows=1000)
    groups = np.concatenate([story[~in_test], story[in_test]])
    grouped = diag.adversarial(texts[~in_test], texts[in_test], seed=0, max_rows=1000, groups=groups)
    assert ungrouped["auc"] > grouped["auc"] + 0.1 and grouped["auc"] < diag.AUC_ALIKE


def test_adversarial_too_few_rows():
    assert diag.adversarial(["a b"] * 10, ["c"], seed=0, max_rows=100)["auc"] is None


# --- fold resemblance, chance -----------------------------------------------------------------


def test_resemblance_flags_closer_validation_rows():
    rng = np.random.default_rng(0)
    record = diag.resemblance(rng.uniform(0.8, 1.0, 300), rng.uniform(0.1, 0.3, 300))
    assert record["differs"] and record["ks"] == 1.0
    assert "closer to" in diag.resemblance_verdict("stratified", record)
    same = diag.resemblance(rng.uniform(0, 1, 300), rng.uniform(0, 1, 300))
    assert not same["differs"] and "look like" in diag.resemblance_verdict("stratified", same)


@pytest.mark.parametrize(
    "metric, y, expected",
    [
        ("accuracy", np.array([0] * 70 + [1] * 30), 0.70),
        ("accuracy", np.array([0, 1] * 50), 0.50),
    ],
)
def test_chance_score(metric, y, expected):
    assert diag.chance_score(metric, y, 2) == pytest.approx(expected, abs=0.03)


def test_at_or_below_chance():
    assert diag.at_or_below_chance({"a": 0.50, "b": 0.45}, 0.5)
    assert not diag.at_or_below_chance({"a": 0.50, "b": 0.62}, 0.5)
    assert not diag.at_or_below_chance({}, 0.5)


# --- the CV plan --------------------------------------------------------------------------------


def _plan(texts, y, test_texts, raw=None, **cv):
    params = parse_params({"seed": 0, "cv": {"folds": 4, "near_duplicate": 0.6, **cv}})
    train, test = _frames(texts, y, test_texts)
    raw = pd.DataFrame({"x": ["0"] * len(texts)}) if raw is None else raw
    return plan_folds(raw, train, test, params, "data/raw/competition/train.csv")


def test_auto_keeps_twins_together_when_test_holds_no_twins():
    texts, y, story = twins(60)
    test_texts, _, _ = twins(30, seed=1)  # other stories: the test split is by story
    folds, groups, record = _plan(texts, y, test_texts, strategy="auto")
    assert record["chosen"].startswith("near_duplicate@"), record["chosen"]
    for s in np.unique(story):
        assert len(set(folds[story == s])) == 1
    assert record["folds"]["stratified"]["differs"] and not record["folds"][record["chosen"]]["differs"]


def test_stratified_folds_unlike_the_test_split_warn(caplog):
    texts, y, _ = twins(60)
    test_texts, _, _ = twins(30, seed=1)
    with caplog.at_level("WARNING", logger="pipeline.cv.plan"):
        _, _, record = _plan(texts, y, test_texts, strategy="stratified")
    assert record["chosen"] == "stratified"
    assert any(w.startswith("folds (stratified)") for w in record["warnings"])
    assert "WARNING folds (stratified)" in caplog.text


def test_auto_keeps_stratified_folds_when_test_shares_the_duplicates():
    texts, y, story = twins(90)
    # a random split: test rows are twins of train rows
    keep = np.ones(len(texts), dtype=bool)
    keep[np.arange(0, len(texts), 6)] = False
    _, _, record = _plan(texts[keep], y[keep], texts[~keep], strategy="auto")
    assert record["chosen"] == "stratified", record["folds"]


def test_group_strategy_uses_the_column_expression():
    texts, y, story = twins(40)
    raw = pd.DataFrame({"a": (story // 2).astype(str), "b": (story % 2).astype(str)})
    folds, groups, record = _plan(texts, y, twins(10, 1)[0], raw=raw, strategy="group", group="a + b")
    assert record["chosen"] == "group"
    for s in np.unique(story):
        assert len(set(folds[story == s])) == 1


def test_time_strategy_is_ordered():
    texts, y, _ = twins(40)
    raw = pd.DataFrame({"when": [f"2020-01-{1 + k % 28:02d}" for k in range(len(texts))]})
    folds, _, record = _plan(texts, y, twins(10, 1)[0], raw=raw, strategy="time", time="when")
    assert record["chosen"] == "time" and record["ordered"]
    days = raw["when"].to_numpy()
    assert days[folds == -1].max() <= days[folds == 0].min()


def test_group_and_time_columns_must_exist():
    raw = pd.DataFrame({"a": ["1", "2"]})
    with pytest.raises(DataError, match=r"cv.group names column\(s\) \['zz'\]"):
        group_values(raw, "a+zz", "train.csv")
    with pytest.raises(DataError, match="cv.time names column 'zz'"):
        time_values(raw, "zz", "train.csv")


def test_bad_time_value_names_the_line():
    raw = pd.DataFrame({"t": ["2020-01-01", "soon", "2020-01-03"]})
    with pytest.raises(DataError, match=r"line\(s\) 3 \(e.g. 'soon'\)"):
        time_values(raw, "t", "train.csv")


def _fit(ks, noise=0.06, **extra):
    return {"ks": ks, "noise": noise, **extra}


def test_choose_ties_go_to_the_simpler_grouping():
    names = ["stratified", "near_duplicate@0.7", "nearest"]  # simplest first
    fits = {"stratified": _fit(0.150), "near_duplicate@0.7": _fit(0.100), "nearest": _fit(0.12)}
    assert choose("auto", fits, names) == "stratified"  # within sampling noise of the best
    fits["stratified"]["ks"] = 0.20
    assert choose("auto", fits, names) == "near_duplicate@0.7"
    assert choose("stratified", fits, names) == "stratified"
    assert choose("auto", {}, names) == "stratified"  # no test rows to compare with


def test_choose_skips_giant_groups():
    names = ["stratified", "nearest"]
    fits = {"stratified": _fit(0.40), "nearest": _fit(0.05, giant=True)}
    assert choose("auto", fits, names) == "stratified"


def test_choose_drops_groupings_that_still_split_opposite_label_twins():
    names = ["stratified", "near_duplicate@0.3", "near_duplicate@0.15"]
    fits = {
        "stratified": _fit(0.05, agreement=0.10, splits_twins=True),
        "near_duplicate@0.3": _fit(0.20, agreement=0.30, splits_twins=True),
        "near_duplicate@0.15": _fit(0.30, agreement=0.52, splits_twins=False),
    }
    assert choose("auto", fits, names) == "stratified"  # no twin warning: KS alone
    assert choose("auto", fits, names, twins_flip=True) == "near_duplicate@0.15"
    fits["near_duplicate@0.15"].update(agreement=0.35, splits_twins=True)
    assert choose("auto", fits, names, twins_flip=True) == "near_duplicate@0.15"  # splits least


def test_twin_label_check_reports_opposite_labels_with_numbers():
    texts, y, _ = twins(60)
    _, _, record = _plan(texts, y, twins(30, seed=1)[0], strategy="auto")
    check = record["twins"]
    assert check["warn"] and check["agreement"] < 0.1 and check["expected"] == 0.5
    assert "0% of 120 train rows" in check["verdict"] and "opposite labels" in check["verdict"]


def test_twin_label_check_quiet_when_neighbours_share_labels():
    texts, y, story = twins(60)
    y = story % 2  # twins share the label
    _, _, record = _plan(texts, y, twins(30, seed=1)[0], strategy="auto")
    assert not record["twins"]["warn"] and record["twins"]["above_balance"]


def test_fold_warning_direction_follows_the_labels():
    # validation rows closer to their nearest training row than test rows are
    close = {"ks": 0.4, "critical": 0.1, "valid_median": 0.6, "test_median": 0.1, "differs": True}
    assert diag.direction({**close, "above_balance": True}) == "optimistic"
    assert diag.direction({**close, "below_balance": True}) == "pessimistic"
    assert diag.direction(close) is None
    far = {**close, "valid_median": 0.05}
    assert diag.direction({**far, "above_balance": True}) == "pessimistic"
    pessimistic = diag.resemblance_verdict(
        "stratified", {**close, "below_balance": True, "agreement": 0.1, "expected": 0.5}
    )
    assert "likely pessimistic" in pessimistic and "10% of the time (class balance 50%)" in pessimistic


def test_source_columns_found_by_repetition_and_url_domain():
    from pipeline.cv.plan import source_columns

    raw = pd.DataFrame(
        {
            "id": [str(i) for i in range(40)],
            "author": [f"a{i % 8}" for i in range(40)],
            "url": [f"https://www.site{i % 5}.com/story/{i}" for i in range(40)],
            "title": [f"unique title {i}" for i in range(40)],
        }
    )
    found = source_columns(raw, {"id"}, 5)
    assert set(found) == {"author", "url"}
    assert len(np.unique(found["url"])) == 5 and len(np.unique(found["author"])) == 8


def test_chance_noise_grows_with_fewer_groups():
    groups = np.arange(400) // 20
    y = groups % 2  # a label per group: 20 pieces of evidence, not 400
    rows = diag.chance_noise("accuracy", y, 2)
    groups = diag.chance_noise("accuracy", y, 2, groups=groups)
    assert 0.01 < rows < 0.04 and groups > 2 * rows


@pytest.mark.parametrize("strategy", ["group", "time"])
def test_params_need_the_column_of_their_strategy(strategy):
    from pipeline.core.errors import ParamsError

    with pytest.raises(
        ParamsError, match=f"cv.{strategy}: .*strategy is '{strategy}' but cv.{strategy} is empty"
    ):
        parse_params({"cv": {"strategy": strategy}})
