"""Does cross-validation split the data the way the test split does? Checks, with verdicts.

* duplicates: exact and near-duplicate texts within train and between train and test, and
  the duplicate groups whose labels conflict;
* adversarial validation: the ROC AUC of a classifier telling train rows from test rows,
  and the n-grams that give them away;
* fold resemblance: the cosine of each validation row to its nearest training row against
  the same for each test row to train, compared with the two-sample Kolmogorov–Smirnov
  statistic ``D`` (0 = same distribution, 1 = disjoint);
* chance: the score a model with no signal gets, for the "CV at or below chance" warning.

Each check returns plain JSON with a ``verdict`` sentence; ``warn`` marks the loud ones.
"""

from __future__ import annotations

import numpy as np

from .duplicates import exact_keys

AUC_ALIKE, AUC_STRONG = 0.60, 0.75


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)


def duplicate_report(
    train_texts, test_texts, y: np.ndarray, groups: np.ndarray, pairs, threshold: float
) -> dict:
    """Exact and near duplicates; ``groups`` are the train rows' near-duplicate groups and
    ``pairs`` the ``(i, j)`` near-duplicate pairs (``i < j``) over train then test rows."""
    n_train = len(y)
    keys_train, keys_test = exact_keys(train_texts), exact_keys(test_texts)
    _, exact_counts = np.unique(keys_train, return_counts=True)
    groups = np.unique(groups, return_inverse=True)[1]
    train_keys = set(keys_train)  # np.isin on object arrays is quadratic
    exact_test = sum(key in train_keys for key in keys_test)
    sizes = np.bincount(groups)
    in_group = sizes[groups] > 1
    pairs_seen = np.unique(np.column_stack([groups, y]), axis=0)  # (group, label) once each
    labels_per_group = np.bincount(pairs_seen[:, 0], minlength=len(sizes))
    conflicting = np.flatnonzero(labels_per_group > 1)
    i, j = pairs[0], pairs[1]
    cross = (i < n_train) & (j >= n_train)
    near_test = len(np.unique(j[cross]))
    record: dict[str, object] = {
        "threshold": threshold,
        "exact_train_rows": int(exact_counts[exact_counts > 1].sum()),
        "exact_test_rows_in_train": exact_test,
        "near_groups": int((sizes > 1).sum()),
        "near_group_rows": int(in_group.sum()),
        "largest_group": int(sizes.max()) if len(sizes) else 0,
        "conflicting_groups": len(conflicting),
        "conflicting_rows": int(np.isin(groups, conflicting).sum()),
        "near_test_rows_in_train": int(near_test),
        "n_train": n_train,
        "n_test": len(test_texts),
    }
    record["verdict"], record["warn"] = _duplicate_verdict(record)
    return record


def _duplicate_verdict(r: dict) -> tuple[str, bool]:
    parts = [
        f"{r['near_group_rows']} of {r['n_train']} train rows sit in {r['near_groups']} "
        f"near-duplicate group(s) (cosine >= {r['threshold']}; {r['exact_train_rows']} rows "
        f"are exact copies); {r['near_test_rows_in_train']} of {r['n_test']} test rows have a "
        f"near-duplicate in train ({r['exact_test_rows_in_train']} exact)."
    ]
    warn = r["conflicting_groups"] > 0 and r["conflicting_rows"] >= 0.05 * r["n_train"]
    if r["conflicting_groups"]:
        parts.append(
            f"{r['conflicting_groups']} group(s) ({r['conflicting_rows']} rows) carry "
            "conflicting labels: folds that split them teach a model the twin's other "
            "label" + (" — a large share of train." if warn else ".")
        )
    return " ".join(parts), warn


def adversarial(
    train_texts, test_texts, seed: int, max_rows: int, groups: np.ndarray | None = None, top: int = 8
) -> dict:
    """How well a TF-IDF logistic regression tells test rows from train rows (5-fold ROC AUC).

    ``groups`` (one per train row, then one per test row) keep near-duplicates in one fold:
    otherwise a test row's twin, labelled "test" in the training folds, gives it away."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    train_texts, test_texts = np.asarray(train_texts, dtype=object), np.asarray(test_texts, dtype=object)
    groups = np.arange(len(train_texts) + len(test_texts)) if groups is None else np.asarray(groups)
    pick_a, pick_b = _sample(len(train_texts), max_rows, rng), _sample(len(test_texts), max_rows, rng)
    a, b = train_texts[pick_a], test_texts[pick_b]
    row_groups = np.concatenate([groups[pick_a], groups[len(train_texts) + pick_b]])
    if min(len(a), len(b)) < 5:
        return {"auc": None, "verdict": "too few rows to compare train with test", "warn": False}
    texts, is_test = np.concatenate([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))]
    vectoriser = TfidfVectorizer(
        min_df=2 if len(texts) >= 100 else 1,
        max_features=50_000,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w+\b",
    )
    try:
        X = vectoriser.fit_transform(texts)
    except ValueError:
        return {"auc": None, "verdict": "no words to compare train with test", "warn": False}
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    if len(np.unique(row_groups)) < 5:
        return {"auc": None, "verdict": "too few distinct texts to compare train with test", "warn": False}
    scores = cross_val_predict(
        model,
        X,
        is_test,
        groups=row_groups,
        method="decision_function",
        cv=StratifiedGroupKFold(5, shuffle=True, random_state=seed),
    )
    auc = float(roc_auc_score(is_test, scores))
    coef = model.fit(X, is_test).coef_[0]
    names = vectoriser.get_feature_names_out()
    order = np.argsort(coef)
    test_features = [str(names[k]) for k in order[::-1][:top]]
    train_features = [str(names[k]) for k in order[:top]]
    record: dict[str, object] = {
        "auc": round(auc, 4),
        "rows": [len(a), len(b)],
        "test_features": test_features,
        "train_features": train_features,
    }
    if auc < AUC_ALIKE:
        verdict = f"train and test look alike: a classifier tells them apart no better than AUC {auc:.2f}."
    elif auc < AUC_STRONG:
        verdict = (
            f"mild shift between train and test (AUC {auc:.2f}); test leans to "
            f"{', '.join(test_features[:5])}."
        )
    else:
        verdict = (
            f"strong shift: a classifier tells test rows from train (AUC {auc:.2f}) by "
            f"{', '.join(test_features[:5])} (test) and "
            f"{', '.join(train_features[:5])} (train); CV may not predict test."
        )
    record.update(verdict=verdict, warn=auc >= AUC_STRONG)
    return record


def ks_critical(n: int, m: int) -> float:
    """The two-sample KS statistic above which two samples of sizes ``n``, ``m`` differ at the
    1% level (c(0.01) = 1.63), floored at 0.15 so that tiny samples need a plain difference."""
    return float(max(0.15, 1.63 * np.sqrt((n + m) / (n * m))))


def resemblance(valid_sim: np.ndarray, test_sim: np.ndarray) -> dict:
    """Compare the nearest-train cosines of validation rows and of test rows."""
    from scipy.stats import ks_2samp

    if len(valid_sim) == 0 or len(test_sim) == 0:
        return {"ks": None, "differs": False}
    ks = float(ks_2samp(valid_sim, test_sim).statistic)
    n, m = len(valid_sim), len(test_sim)
    return {
        "ks": round(ks, 4),
        "critical": round(ks_critical(n, m), 4),
        "noise": round(1.36 * float(np.sqrt((n + m) / (n * m))), 4),  # 5% critical value
        "valid_median": round(float(np.median(valid_sim)), 4),
        "test_median": round(float(np.median(test_sim)), 4),
        "differs": bool(ks > ks_critical(len(valid_sim), len(test_sim))),
    }


def agreement(agree: np.ndarray, expected: float) -> dict:
    """How often rows share the label of their nearest (allowed) train row, against ``expected``
    (class balance alone: the sum of squared class shares). Far below or above means beyond
    max(0.05, three binomial standard errors)."""
    n = len(agree)
    if n == 0:
        return {
            "agreement": None,
            "expected": round(expected, 4),
            "below_balance": False,
            "above_balance": False,
        }
    share = float(np.mean(agree))
    margin = max(0.05, 3 * float(np.sqrt(expected * (1 - expected) / n)))
    return {
        "agreement": round(share, 4),
        "expected": round(expected, 4),
        "below_balance": bool(share < expected - margin),
        "above_balance": bool(share > expected + margin),
    }


def twin_labels(y: np.ndarray, nearest: np.ndarray, cosine: np.ndarray) -> dict:
    """The label-aware twin check: for each train row with a nearest other train row, does that
    row carry the same label? Far below class balance means twins with opposite labels (random
    folds then teach a model the twin's other label: CV pessimistic); far above means similar
    texts share labels (normal for a learnable task; folds decide whether that leaks)."""
    y, has = np.asarray(y), nearest >= 0
    expected = float(((np.bincount(y) / max(len(y), 1)) ** 2).sum()) if len(y) else 1.0
    record = agreement(y[has] == y[nearest[has]], expected)
    record.update(
        rows=int(has.sum()), median_cosine=round(float(np.median(cosine[has])), 4) if has.any() else None
    )
    if record["agreement"] is None:
        record.update(verdict="no train row shares a rare word with another: no twins to check.", warn=False)
        return record
    a, e, c = record["agreement"], record["expected"], record["median_cosine"]
    base = (
        f"the nearest other train row (median cosine {c:.2f}) carries the same label for "
        f"{a:.0%} of {record['rows']} train rows; class balance alone predicts {e:.0%}"
    )
    if record["below_balance"]:
        verdict = (
            base + ": twins with opposite labels. Folds that split a twin pair teach a model "
            "the other label, so CV is pessimistic unless the folds keep twins together; "
            "auto keeps only the groupings that do."
        )
    elif record["above_balance"]:
        verdict = (
            base
            + ": similar texts share labels (a learnable task, or duplicates that leak if the folds split them and the test split does not)."
        )
    else:
        verdict = base + ": no twin effect."
    record.update(verdict=verdict, warn=record["below_balance"])
    return record


def direction(r: dict) -> str | None:
    """Is CV optimistic or pessimistic about test, from the measured fold resemblance ``r``:
    which side sits closer to its nearest training row, and whether those rows share labels
    (``above_balance``) or carry the other label (``below_balance``). None: no measured
    direction (the nearest rows carry labels at the class-balance rate)."""
    if r.get("ks") is None:
        return None
    closer = r["valid_median"] > r["test_median"]
    if r.get("above_balance"):
        return "optimistic" if closer else "pessimistic"
    if r.get("below_balance"):
        return "pessimistic" if closer else "optimistic"
    return None


def resemblance_verdict(name: str, r: dict) -> str:
    if r.get("ks") is None:
        return f"{name} folds: no test rows to compare with."
    closer = r["valid_median"] > r["test_median"]
    labels = (
        f"; those nearest training rows share the validation row's label {r['agreement']:.0%} of the "
        f"time (class balance {r['expected']:.0%})"
        if r.get("agreement") is not None
        else ""
    )
    if r["differs"]:
        way = direction(r)
        effect = (
            f"so CV is likely {way} about test"
            if way
            else "so CV may miss test in either direction (the nearest rows carry no label signal)"
        )
        fix = (
            "group the rows the test split keeps together (cv.group, cv.time, or a lower cv.near_duplicate)."
            if closer
            else "test rows have closer matches in train than the folds leave "
            "(cv.strategy stratified splits near-duplicates as a random test split does)."
        )
        return (
            f"{name} folds differ from the test split (KS D={r['ks']:.2f} > {r['critical']:.2f}): "
            f"validation rows are {'closer to' if closer else 'further from'} their nearest "
            f"training row (median cosine {r['valid_median']:.2f}) than test rows are (median "
            f"{r['test_median']:.2f}){labels}, {effect}; {fix}"
        )
    return (
        f"{name} folds look like the test split (KS D={r['ks']:.2f} <= {r['critical']:.2f}; "
        f"median nearest-train cosine {r['valid_median']:.2f} validation, {r['test_median']:.2f} test)."
    )


def trust(chosen: str, fit: dict, twins: dict, adversarial: dict) -> dict:
    """Can CV choose between models? Not when the chosen folds still differ from the test split,
    still split opposite-label twins, or when a classifier tells test rows from train (test
    rows come from sources train never saw) while it tells a validation fold from its training
    folds at least 0.1 AUC less well (the folds do not hold out sources as the test split
    does). ``advice`` says what the user should do."""
    reasons, advice, kinds = [], [], []
    if fit.get("differs"):
        kinds.append("folds")
        way = direction(fit)
        reasons.append(
            f"the {chosen} folds still differ from the test split (KS D={fit['ks']:.2f})"
            + (f": CV is likely {way}" if way else "")
        )
        advice.append(
            "set cv.group to the column the organisers split by (story, source, author, date), "
            "or cv.time, if train has one"
        )
    if twins.get("warn") and fit.get("splits_twins"):
        kinds.append("twins")
        reasons.append(
            f"validation rows still meet their opposite-label twin in the training folds "
            f"(label agreement {fit['agreement']:.0%} vs {fit['expected']:.0%} by class balance): CV is pessimistic"
        )
        advice.append("give train a story/twin id column and set cv.group to it")
    folds_auc = adversarial.get("folds_auc")
    if adversarial.get("warn") and (folds_auc is None or folds_auc < adversarial["auc"] - 0.1):
        kinds.append("source")
        reasons.append(
            f"a classifier tells test rows from train (AUC {adversarial['auc']:.2f}) but a "
            f"validation fold from its training folds far less well (AUC "
            f"{'–' if folds_auc is None else f'{folds_auc:.2f}'}): test rows come from sources or "
            "times the folds do not hold out, and models that learn the source score worse there "
            "than CV says"
        )
        advice.append("set cv.group to the source column (author, site, publisher) if train has one")
    trusted = not reasons
    if not trusted:
        advice.append(
            "the ensemble ships the plain average of the TF-IDF models meanwhile (docs/cv.md, ensemble.doubt)"
        )
    return {"trusted": trusted, "reasons": reasons, "advice": advice}


def chance_score(metric: str, y: np.ndarray, n_classes: int, seed: int = 0) -> float:
    """The better of two no-signal predictors: always the majority class, and labels
    predicted at random with the class frequencies (mean of 5 shuffles)."""
    from ..core.metrics import score

    y = np.asarray(y)
    onehot = lambda labels: np.eye(n_classes)[labels]  # noqa: E731
    majority = score(metric, y, onehot(np.full(len(y), np.bincount(y).argmax())))
    rng = np.random.default_rng(seed)
    shuffled = float(np.mean([score(metric, y, onehot(rng.permutation(y))) for _ in range(5)]))
    return float(max(majority, shuffled))


def chance_noise(
    metric: str, y: np.ndarray, n_classes: int, groups: np.ndarray | None = None, seed: int = 0
) -> float:
    """The standard deviation of a no-signal predictor's score over ``y`` (labels drawn at random
    with the class frequencies, 20 draws): how far CV can rise above chance by luck. Rows of one
    group (twins, a source) get one draw between them, so few groups mean more noise."""
    from ..core.metrics import score

    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    _, group_of_row = np.unique(np.arange(len(y)) if groups is None else groups, return_inverse=True)
    draws = []
    for _ in range(20):
        guess = rng.permutation(y)[: group_of_row.max() + 1][group_of_row]
        draws.append(score(metric, y, np.eye(n_classes)[guess]))
    return float(np.std(draws))


def at_or_below_chance(cv_scores: dict[str, float], chance: float, margin: float = 0.01) -> bool:
    """True when every model's CV score is at most ``chance + margin`` (``margin``: two
    standard deviations of :func:`chance_noise`, at least 0.01)."""
    return bool(cv_scores) and all(s <= chance + margin for s in cv_scores.values())
