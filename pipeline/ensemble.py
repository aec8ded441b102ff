"""``ensemble`` stage: stacking and weighted blending of the base models' OOF predictions.

Candidates, each scored by an inner cross-validation over the out-of-fold rows (the same
fold column as the base models), so no candidate is scored on rows it was fitted on:

* ``stack`` — logistic regression on every model's log-probabilities;
* ``weighted`` — a weighted mean of probabilities (or of ranks, ``ensemble.rank: true``,
  binary only) with non-negative weights summing to 1, fitted by minimising log loss;
* ``best_single`` — the best base model alone (picked inside each inner fold), a fallback
  for when blending does not help.

All candidates' scores are honest; choosing the best of them is a mild selection. The
candidate with the best inner-CV score (``competition.metric``) is refitted on all
OOF rows and applied to the test predictions, unless the guard rejects it: a blend ships
only when a paired bootstrap over the CV groups puts its inner-CV score above the best single
model's with ``ensemble.guard`` confidence (docs/cv.md); otherwise ``best_single`` ships.
Rows for which some model has no OOF prediction (RNNs may run fewer folds) are left out of
the fit and the scores.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .core.outputs import (
    PredictionRecord,
    load_meta,
    load_predictions,
    load_prepared,
    save_predictions,
    save_unavailable,
)
from .core.params import Params
from .core.tasks import Task

log = logging.getLogger(__name__)
EPS = 1e-6


def _log_features(probas: list[np.ndarray]) -> np.ndarray:
    clipped = [np.log(np.clip(p, EPS, 1.0)) for p in probas]
    # Binary: the positive-class log-odds is enough; multi-class: every log-probability.
    if probas[0].shape[1] == 2:
        return np.column_stack([c[:, 1] - c[:, 0] for c in clipped])
    return np.hstack(clipped)


class Stacker:
    """Logistic-regression meta-learner on log-probabilities."""

    name = "stack"

    def __init__(self, C: float, seed: int):
        self.C, self.seed = C, seed

    def fit(self, probas, y):
        from sklearn.linear_model import LogisticRegression

        self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.model_.fit(_log_features(probas), y)
        return self

    def predict_proba(self, probas):
        out = np.zeros((len(probas[0]), probas[0].shape[1]))
        out[:, self.model_.classes_] = self.model_.predict_proba(_log_features(probas))
        return out

    def describe(self, names):
        coef = self.model_.coef_
        per_model = np.abs(coef).reshape(coef.shape[0], len(names), -1).sum(axis=(0, 2))
        return {n: round(float(c), 4) for n, c in zip(names, per_model)}


class WeightedMean:
    """Non-negative weights summing to 1, minimising the log loss of the blend."""

    name = "weighted"

    def __init__(self, rank: bool = False):
        self.rank = rank

    def _blend(self, probas, weights):
        if self.rank:  # binary only: average of normalised ranks of P(class 1)
            from scipy.stats import rankdata

            ranks = [rankdata(p[:, 1]) / len(p) for p in probas]
            positive = np.tensordot(weights, np.array(ranks), axes=1)
            return np.column_stack([1 - positive, positive])
        return np.tensordot(weights, np.array(probas), axes=1)

    def fit(self, probas, y):
        from scipy.optimize import minimize

        def loss(theta):
            weights = np.exp(theta - theta.max())
            blend = np.clip(self._blend(probas, weights / weights.sum()), EPS, 1.0)
            return -np.mean(np.log(blend[np.arange(len(y)), y]))

        theta = minimize(
            loss,
            np.zeros(len(probas)),
            method="Nelder-Mead",
            options={"maxiter": 400 * len(probas), "xatol": 1e-4, "fatol": 1e-7},
        ).x
        weights = np.exp(theta - theta.max())
        self.weights_ = weights / weights.sum()
        return self

    def predict_proba(self, probas):
        return self._blend(probas, self.weights_)

    def describe(self, names):
        return {n: round(float(w), 4) for n, w in zip(names, self.weights_)}


class BestSingle:
    name = "best_single"

    def __init__(self, metric: str):
        self.metric = metric

    def fit(self, probas, y):
        from .core.metrics import score

        self.index_ = int(np.argmax([score(self.metric, y, p) for p in probas]))
        return self

    def predict_proba(self, probas):
        return probas[self.index_]

    def describe(self, names):
        return {n: float(i == self.index_) for i, n in enumerate(names)}


class PlainMean:
    """Fixed weights fitted on nothing (a plain average), so nothing is picked on noise when CV
    cannot be trusted."""

    name = "mean"

    def __init__(self, weights: dict[str, float], names: list[str]):
        self.weights_ = np.array([weights.get(n, 0.0) for n in names])

    def fit(self, probas, y):
        return self

    def predict_proba(self, probas):
        return np.tensordot(self.weights_, np.array(probas), axes=1)

    def describe(self, names):
        return {n: round(float(w), 4) for n, w in zip(names, self.weights_)}

    def summary(self, names) -> str:
        return ", ".join(f"{n} {w:.3g}" for n, w in zip(names, self.weights_) if w > 0)


def _mean_weights(names: list[str], tfidf_only: bool) -> dict[str, float]:
    """The TF-IDF models averaged (``tfidf_only``: sources or twins make CV untrustworthy, and
    neural models learn them hardest), or else every model family averaged, each family's
    models averaged within it. Without TF-IDF models, every family."""
    from .models import MODELS

    family = {n: MODELS[n].family if n in MODELS else n for n in names}
    keep = [n for n in names if family[n] == "tfidf"] if tfidf_only else []
    keep = keep or list(names)
    n_families = len({family[n] for n in keep})
    return {n: 1 / n_families / sum(family[m] == family[n] for m in keep) for n in keep}


def _doubts(
    task: Task, params: Params, singles: dict, y, groups, metric: str, n_classes: int
) -> tuple[list[str], list[str]]:
    """Why CV cannot choose between models: prepare's trust verdict, and every base model's
    CV within two noise standard deviations of chance."""
    from .core.outputs import load_diagnostics
    from .cv.diagnostics import at_or_below_chance, chance_noise, chance_score

    trust = load_diagnostics(task).get("trust", {})
    doubts, kinds = list(trust.get("reasons", [])), list(trust.get("kinds", []))
    if metric != "log_loss":
        chance = chance_score(metric, y, n_classes)
        margin = max(0.01, 2 * chance_noise(metric, y, n_classes, groups))
        if at_or_below_chance(singles, chance, margin):
            doubts.append(
                f"every model's CV {metric} is within {margin:.3f} (two noise standard deviations) "
                f"of chance {chance:.3f}"
            )
            kinds.append("chance")
    return doubts, kinds


def _inner_cv(make, probas, y, folds):
    """Out-of-fold predictions of the ensembler ``make()`` over the given fold column."""
    out = np.zeros_like(probas[0])
    for fold in np.unique(folds):
        held = folds == fold
        model = make().fit([p[~held] for p in probas], y[~held])
        out[held] = model.predict_proba([p[held] for p in probas])
    return out


def paired_bootstrap(metric: str, y, proba_a, proba_b, groups, resamples: int, seed: int) -> float:
    """Share of group-bootstrap resamples in which ``proba_a`` scores strictly better than
    ``proba_b`` on the same rows. Whole groups are resampled: near-duplicate rows are not
    independent evidence."""
    from .core.metrics import score

    _, group_of_row = np.unique(groups, return_inverse=True)
    n_groups = group_of_row.max() + 1
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(resamples):
        picks = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        rows = np.repeat(np.arange(len(y)), picks[group_of_row])
        wins += score(metric, y[rows], proba_a[rows]) > score(metric, y[rows], proba_b[rows])
    return wins / resamples


def _guard(
    chosen: str,
    oof_by_method: dict,
    probas: list,
    names: list,
    singles: dict,
    y,
    groups,
    params: Params,
    metric: str,
) -> tuple[str, dict]:
    """Keep ``chosen`` only if it beats the best single model with ``ensemble.guard`` confidence."""
    best = max(singles, key=singles.__getitem__)
    if chosen == "best_single" or params.ensemble.guard == 0:
        why = "inner CV chose best_single" if chosen == "best_single" else "guard off (ensemble.guard: 0)"
        return chosen, {"candidate": chosen, "shipped": chosen, "verdict": f"{why}; {chosen} ships."}
    p_better = paired_bootstrap(
        metric,
        y,
        oof_by_method[chosen],
        probas[names.index(best)],
        groups,
        params.ensemble.guard_resamples,
        params.seed,
    )
    keep = p_better >= params.ensemble.guard
    record = {
        "candidate": chosen,
        "best_single": best,
        "p_better": round(p_better, 4),
        "confidence": params.ensemble.guard,
        "shipped": chosen if keep else "best_single",
    }
    record["verdict"] = (
        f"{chosen} beats {best} in {p_better:.1%} of group-bootstrap resamples of the "
        f"inner-CV rows; "
        + ("shipped." if keep else f"below the {params.ensemble.guard:.0%} required, so best_single ships.")
    )
    return record["shipped"], record


def candidates(params: Params, binary: bool, metric: str):
    p = params.ensemble
    makers = {
        "stack": lambda: Stacker(p.stack_C, params.seed),
        "weighted": lambda: WeightedMean(rank=p.rank and binary),
        "best_single": lambda: BestSingle(metric),
    }
    return {name: makers[name] for name in p.methods}


def ensemble(task: Task, params: Params) -> dict:
    """Fit the ensemblers on the OOF predictions of every base model of ``task``."""
    meta = load_meta(task)
    record: dict = {"task": task.name, "model": "ensemble", "available": meta.available}
    if not meta.available:
        save_unavailable(task, "ensemble", record, meta.reason)
        return record
    from .core.metrics import all_scores, score

    train, _, _ = load_prepared(task)

    started = time.perf_counter()
    names = list(task.models_to_run(params))
    loaded = [load_predictions(task, name)[1] for name in names]
    oofs, tests = [a["oof"] for a in loaded], [a["test"] for a in loaded]
    rows = np.all([~np.isnan(o[:, 0]) for o in oofs], axis=0)
    y, base_folds = train["y"].to_numpy()[rows], train["fold"].to_numpy()[rows]
    folds = base_folds
    if len(np.unique(base_folds)) < 2:
        # The RNNs ran a single fold: split those rows anew for the inner CV. Still honest:
        # every base prediction on them is already out-of-fold.
        from .cv.folds import make_folds

        folds = make_folds(y, params.cv.folds, params.seed)
    probas = [o[rows] for o in oofs]
    metric = task.metric
    singles = {n: score(metric, y, p) for n, p in zip(names, probas)}
    results, oof_by_method = {}, {}
    for name, make in candidates(params, oofs[0].shape[1] == 2, metric).items():
        oof_by_method[name] = _inner_cv(make, probas, y, folds)
        results[name] = all_scores(y, oof_by_method[name])
        log.info("[ensemble %s] %s inner-CV %s=%.4f", task.name, name, metric, results[name][metric])
    chosen = max(results, key=lambda n: results[n][metric])
    groups = train["group"].to_numpy()[rows] if "group" in train else np.arange(len(y))
    doubts, kinds = _doubts(task, params, singles, y, groups, metric, len(probas[0][0]))
    mean: PlainMean | None = None
    if doubts and params.ensemble.doubt == "mean":
        mean = PlainMean(_mean_weights(names, tfidf_only=bool({"source", "twins"} & set(kinds))), names)
        oof_by_method["mean"] = _inner_cv(lambda: mean, probas, y, folds)
        results["mean"] = all_scores(y, oof_by_method["mean"])
        chosen, guard = (
            "mean",
            {
                "candidate": "mean",
                "shipped": "mean",
                "doubts": doubts,
                "verdict": "CV cannot choose here ("
                + "; ".join(doubts)
                + "), so a plain average ships instead of the best inner-CV method "
                f"(ensemble.doubt: mean): {mean.summary(names)}.",
            },
        )
    else:
        chosen, guard = _guard(chosen, oof_by_method, probas, names, singles, y, groups, params, metric)
    log.info("[ensemble %s] guard: %s", task.name, guard["verdict"])
    if chosen not in oof_by_method:  # best_single was not among ensemble.methods
        oof_by_method[chosen] = _inner_cv(lambda: BestSingle(metric), probas, y, folds)
        results[chosen] = all_scores(y, oof_by_method[chosen])
    final = (
        BestSingle(metric)
        if chosen == "best_single"
        else mean
        if chosen == "mean" and mean is not None
        else candidates(params, oofs[0].shape[1] == 2, metric)[chosen]()
    ).fit(probas, y)
    oof = np.full_like(oofs[0], np.nan)
    oof[rows] = oof_by_method[chosen]
    record.update(
        metric=metric,
        method=chosen,
        methods=results,
        guard=guard,
        n_scored=int(rows.sum()),
        folds=sorted(int(f) for f in np.unique(base_folds)),
        cv=results[chosen],
        base_models_same_rows={n: round(s, 6) for n, s in singles.items()},
        weights=final.describe(names),
        seconds=round(time.perf_counter() - started, 2),
    )
    save_predictions(
        task, "ensemble", PredictionRecord.model_validate(record), oof, final.predict_proba(tests)
    )
    best_name = max(singles, key=singles.__getitem__)
    log.info(
        "[ensemble %s] chose %s: %s=%.4f vs best single %s=%.4f on the same %d rows; weights %s",
        task.name,
        chosen,
        metric,
        results[chosen][metric],
        best_name,
        singles[best_name],
        rows.sum(),
        record["weights"],
    )
    return record
