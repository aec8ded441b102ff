"""``report`` stage: metrics JSON, DVC plots + PNG copies, markdown report (the
``submissions`` stage writes the submission files).

Per task it writes ``metrics/<task>.json`` (``{"cv": {model: scores}}``, plus ``"test"``
where test labels are public; DVC shows them as ``cv.<model>.<metric>``), ``metrics/<task>/``
(the small series ``dvc plots`` draws, git-tracked so any commit's plots render from a
clone: ROC points, confusion counts, RNN losses per epoch, tuning trials), ``plots/<task>/``
(PNGs for offline viewing) and ``reports/<task>.md``. The ``summary``
stage (:mod:`pipeline.summary`) then gathers the validation tasks' test scores into ``metrics/validation.json`` with
the flat keys ``<task>.<model>.test_accuracy`` / ``test_f1_macro`` that outside scripts read,
and the headline numbers into ``metrics/headline.json`` (the only file ``dvc.yaml`` declares
as metrics, so ``dvc exp show`` fits a terminal).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .core.errors import StageOutputError
from .core.io import atomic_path, write_json, write_text
from .core.outputs import (
    METRICS_DIR,
    PLOTS_DIR,
    REPORTS_DIR,
    PredictionRecord,
    PreparedMeta,
    best_params_path,
    load_best_params,
    load_diagnostics,
    load_meta,
    load_predictions,
    load_prepared,
    report_models,
    trials_path,
)
from .core.params import Params
from .core.tasks import Task

log = logging.getLogger(__name__)


def _pyplot():
    # Imported on use: an unavailable task's report (and the summary) needs no plotting.
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or servers
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def _roc_png(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str) -> None:
    fig, ax = _pyplot().subplots(figsize=(5.5, 5))
    for model, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{model} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    _save_png(fig, path)


def _confusion_png(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    size = min(4 + 0.18 * len(classes), 14)
    fig, ax = _pyplot().subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7 if len(classes) > 10 else 10)
    ax.set_yticks(range(len(classes)), classes, fontsize=7 if len(classes) > 10 else 10)
    if len(classes) <= 10:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                color="white" if count > matrix.max() / 2 else "black",
            )
    ax.set(xlabel="predicted", ylabel="actual", title=title)
    _save_png(fig, path)


def _comparison_png(
    scores: dict[str, float], metric: str, path: Path, title: str, zero_based: bool = False
) -> None:
    fig, ax = _pyplot().subplots(figsize=(6, 0.5 + 0.45 * len(scores)))
    names = list(scores)
    ax.barh(names, [scores[n] for n in names], color="tab:blue")
    for i, name in enumerate(names):
        ax.text(scores[name], i, f" {scores[name]:.4f}", va="center", fontsize=8)
    low = 0.0 if zero_based else max(0.0, min(scores.values()) - 0.1)
    ax.set_xlim(low, max(scores.values()) * 1.15 + 1e-9)
    ax.invert_yaxis()
    ax.set(xlabel=metric, title=title)
    _save_png(fig, path)


def tuning_history(task: Task, model: str) -> dict | None:
    """The ``tune`` stage's trials for ``model``: every trial's number, state and objective value,
    the best complete value so far, and what the objective was (``None`` when not tuned)."""
    import pandas as pd

    trials = trials_path(task, model)
    if not (trials.exists() and best_params_path(task, model).exists()):
        return None
    frame = pd.read_csv(trials).sort_values("number")
    metric = load_best_params(task, model).metric
    minimise = metric == "log_loss"
    complete = frame["value"].where(frame["state"] == "COMPLETE")
    frame["best"] = (complete.cummin() if minimise else complete.cummax()).ffill()
    return {
        "task": task.name,
        "model": model,
        "metric": metric,
        "minimise": minimise,
        "trials": frame[["number", "state", "value", "best"]],
    }


def _objective(history: dict) -> str:
    direction = "lower" if history["minimise"] else "higher"
    return f"{history['metric']} on fold 0 ({direction} is better)"


def _tuning_png(history: dict, path: Path) -> None:
    trials = history["trials"]
    fig, ax = _pyplot().subplots(figsize=(6, 3.5))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        shown = trials[(trials["state"] == state) & trials["value"].notna()]
        ax.scatter(shown["number"], shown["value"], marker=marker, label=f"{state.lower()} ({len(shown)})")
    ax.step(trials["number"], trials["best"], where="post", color="tab:red", label="best so far")
    ax.set_xticks(trials["number"])
    ax.set(
        xlabel="trial",
        ylabel=_objective(history),
        title=f"{history['task']} / {history['model']}: tuning history ({len(trials)} trials)",
    )
    ax.legend(fontsize=8)
    _save_png(fig, path)


def _tuning_markdown(histories: Sequence[dict]) -> list[str]:
    lines = []
    for history in histories:
        trials = history["trials"]
        counts = trials["state"].value_counts()
        states = [s for s in ("COMPLETE", "PRUNED", "FAIL") if s in counts] + sorted(
            set(counts.index) - {"COMPLETE", "PRUNED", "FAIL"}
        )
        lines += [
            f"## Tuning: {history['model']} on {history['task']}",
            "",
            f"Objective: {_objective(history)}. "
            + ", ".join(f"{counts[s]} {s.lower()}" for s in states)
            + ".",
            "",
            "| trial | state | objective | best so far |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {int(t.number)} | {t.state.lower()} | {_number(t.value)} | {_number(t.best)} |"
            for t in trials.itertuples()
        ]
        lines += [
            "",
            f"![tuning {history['model']}](../plots/{history['task']}/tuning_{history['model']}.png)",
            "",
        ]
    return lines


def _number(value) -> str:
    return "–" if value != value or value is None else f"{value:.4f}"  # NaN: no value


def cv_warnings(
    task: Task, checks: dict, records: dict[str, PredictionRecord], y: np.ndarray, n_classes: int
) -> tuple[list[str], float]:
    """The loud warnings: prepare's (shift, opposite-label twins, conflicting duplicates, folds
    unlike the test split) and every model's CV within its noise of chance. Also returns the
    chance score."""
    from .cv.diagnostics import at_or_below_chance, chance_noise, chance_score

    chance = chance_score(task.metric, y, n_classes)
    warnings = list(checks.get("warnings", []))
    models = {m: r.cv[task.metric] for m, r in records.items() if m != "ensemble"}
    margin = max(0.01, 2 * chance_noise(task.metric, y, n_classes))
    if task.metric != "log_loss" and at_or_below_chance(models, chance, margin):
        warnings.insert(
            0,
            f"every model's CV {task.metric} is at or near chance ({chance:.3f}, what a model "
            f"with no signal scores; within {margin:.3f}, two standard deviations of that score "
            "over these rows): the folds probably split rows the test split keeps together "
            "(see below); do not trust CV or the ensemble built on it.",
        )
    return warnings, chance


def what_to_do(checks: dict, ensemble: PredictionRecord | None) -> list[str]:
    """The report's first lines when CV cannot be trusted: why, and what to do."""
    trust = checks.get("trust") or {}
    if trust.get("trusted", True):
        return []
    lines = ["> **What to do:** " + "; ".join(trust.get("advice", [])) + "."]
    if ensemble is not None:
        lines.append(f"> **Shipped:** {ensemble.method} ({ensemble.guard.get('verdict', '')})")
    return lines + [""]


def _checks_markdown(checks: dict) -> list[str]:
    if not checks:
        return []
    lines = [
        "## Do the folds look like the test split?",
        "",
        f"cv.strategy **{checks['strategy']}** → **{checks['chosen']}** folds (docs/cv.md).",
        "",
        "| folds | groups (largest) | KS D (nearest-train cosine, validation vs test) | median validation "
        "| median test | nearest-row label agreement (balance) |",
        "|---|---|---|---|---|---|",
    ]
    for name, fit in checks.get("folds", {}).items():
        if fit.get("ks") is not None:
            mark = " ←" if name == checks["chosen"] else ""
            groups = "–" if fit.get("groups") is None else f"{fit['groups']} ({fit['largest_group']})"
            groups += " giant" if fit.get("giant") else ""
            agree = (
                "–"
                if fit.get("agreement") is None
                else f"{fit['agreement']:.2f} ({fit['expected']:.2f})"
                + (" twins split" if fit.get("below_balance") else "")
            )
            lines.append(
                f"| {name}{mark} | {groups} | {fit['ks']:.3f}{' (differs)' if fit['differs'] else ''} "
                f"| {fit['valid_median']:.3f} | {fit['test_median']:.3f} | {agree} |"
            )
    chosen = checks.get("folds", {}).get(checks["chosen"])
    lines += ["", f"- Folds: {chosen['verdict'] if chosen else 'no test rows to compare with.'}"]
    lines += [f"- Twins: {checks['twins']['verdict']}"] if "twins" in checks else []
    lines += [
        f"- Duplicates: {checks['duplicates']['verdict']}",
        f"- Train vs test: {checks['adversarial']['verdict']}",
        "",
    ]
    return lines


def _code(text: str) -> str:
    """``text`` as inline code, unless it holds backticks of its own (a fix naming keys)."""
    return text if "`" in text else f"`{text}`"


def _cv_rows(record: PredictionRecord, n_train: int) -> str:
    """Over which rows a CV score is: the folds the model ran and the out-of-fold rows scored."""
    n_scored = n_train if record.n_scored is None else record.n_scored
    return f"{len(record.folds)} folds, {n_scored}/{n_train} rows"


def _markdown(
    task: Task,
    meta: PreparedMeta,
    records: dict[str, PredictionRecord],
    scores_test: dict,
    histories: Sequence[dict] = (),
    checks: dict | None = None,
    warnings: Sequence[str] = (),
) -> str:
    lines = [f"# {task.name}: model report", ""]
    if not meta.available:
        return "\n".join(lines + [f"**Unavailable:** {meta.reason}", "", f"Fix: {_code(meta.fix)}", ""])
    lines += [f"> **WARNING — CV may not predict test:** {w}" for w in warnings]
    lines += [""] if warnings else []
    lines += what_to_do(checks or {}, records.get("ensemble"))
    lines += [
        f"{meta.n_train} train / {meta.n_test} test rows, {len(meta.classes)} classes. "
        f"Headline metric: **{task.metric}** (out-of-fold on train). *CV over* says which "
        "rows each CV score covers: TF-IDF models run every fold (all rows), RNNs the first "
        "`neural.folds` folds (their rows only), the ensemble the rows every model covers; "
        "scores over different rows are not directly comparable.",
        "",
        "| model | CV "
        + task.metric
        + " | CV f1_macro | CV log_loss | CV over | seconds |"
        + (" test accuracy |" if scores_test else ""),
        "|---|---|---|---|---|---|" + ("---|" if scores_test else ""),
    ]
    for model, rec in records.items():
        cv = rec.cv
        row = (
            f"| {model} | {cv[task.metric]:.4f} | {cv['f1_macro']:.4f} | {cv['log_loss']:.4f} "
            f"| {_cv_rows(rec, meta.n_train)} | {rec.seconds:.1f} |"
        )
        if scores_test:
            row += f" {scores_test[model]['accuracy']:.4f} |"
        lines.append(row)
    lines += ["", f"![model comparison](../plots/{task.name}/model_comparison.png)", ""]
    if len(meta.classes) == 2:
        lines += [f"![ROC](../plots/{task.name}/roc.png)", ""]
    for model in records:
        lines += [f"![confusion {model}](../plots/{task.name}/confusion_{model}.png)"]
    if "ensemble" in records:
        ens = records["ensemble"]
        lines += [
            "",
            f"Ensemble: **{ens.method}** chosen by inner CV over {ens.n_scored} "
            f"out-of-fold rows. Inner-CV {task.metric} per method: "
            + ", ".join(f"{m} {s[task.metric]:.4f}" for m, s in ens.methods.items())
            + ". Base models on the same rows: "
            + ", ".join(f"{m} {s:.4f}" for m, s in ens.base_models_same_rows.items())
            + ". "
            + f"Guard: {ens.guard.get('verdict', 'none (older run).')}",
            "",
            f"![ensemble weights](../plots/{task.name}/ensemble_weights.png)",
        ]
    lines += [""] + _tuning_markdown(histories) + _checks_markdown(checks or {})
    return "\n".join(lines) + "\n"


def _training_curves(
    task: Task, params: Params, records: dict[str, PredictionRecord], plot_dir: Path
) -> None:
    """DVC plot data: per RNN, the losses per epoch (mean over its folds and seeds), and per
    tuning study, each complete trial's objective with the best value so far."""
    import pandas as pd

    for model, record in records.items():
        if record.epochs:
            per_epoch = pd.DataFrame(record.epochs).drop(columns=["fold", "seed"]).groupby("epoch").mean()
            write_json(
                plot_dir / "epochs" / f"{model}.json", per_epoch.round(5).reset_index().to_dict("records")
            )
    for model in params.models.rnn:
        history = tuning_history(task, model)
        # An RNN that was not tuned (too few rows, no budget) gets an empty series: `dvc plots
        # show` fails on a plot folder that does not exist, and draws nothing for an empty one.
        done = history["trials"].query("state == 'COMPLETE'") if history else None
        write_json(
            plot_dir / "trials" / f"{model}.json",
            []
            if done is None
            else [
                {"trial": int(n), "value": round(float(v), 5), "best": round(float(b), 5)}
                for n, v, b in zip(done["number"], done["value"], done["best"])
            ],
        )


def _model_plots(
    task: Task,
    model: str,
    record: PredictionRecord,
    oof: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    plot_dir: Path,
    series: Path,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """One model's out-of-fold confusion matrix and (binary tasks) ROC curve, as DVC plot data
    in ``series`` and PNGs in ``plot_dir``; returns the ROC ``(fpr, tpr, auc)`` or ``None``."""
    from sklearn.metrics import confusion_matrix, roc_curve

    scored = ~np.isnan(oof[:, 0])
    pred = oof[scored].argmax(axis=1)
    matrix = confusion_matrix(y[scored], pred, labels=range(len(classes)))
    write_json(
        series / "confusion" / f"{model}.json",
        [
            {"actual": classes[a], "predicted": classes[p], "count": int(matrix[a, p])}
            for a, p in zip(*np.nonzero(matrix))
        ],
    )
    _confusion_png(
        matrix, classes, plot_dir / f"confusion_{model}.png", f"{task.name} / {model} (out-of-fold)"
    )
    if len(classes) != 2:
        return None
    fpr, tpr, _ = roc_curve(y[scored], oof[scored, 1])
    step = max(1, len(fpr) // 400)  # keep the plot files small
    write_json(
        series / "roc" / f"{model}.json",
        [{"fpr": round(float(a), 5), "tpr": round(float(b), 5)} for a, b in zip(fpr[::step], tpr[::step])],
    )
    return fpr, tpr, record.cv["roc_auc"]


def report(task: Task, params: Params) -> dict:
    """Write metrics, plots and the markdown report for ``task``."""
    meta = load_meta(task)
    metrics: dict = {"available": int(meta.available)}
    records: dict[str, PredictionRecord] = {}
    scores_test: dict[str, dict[str, float]] = {}
    warnings: list[str] = []
    checks = load_diagnostics(task)
    histories: list[dict] = []
    plots = PLOTS_DIR / task.name
    with atomic_path(plots) as plot_dir, atomic_path(METRICS_DIR / task.name) as series:
        plot_dir.mkdir()
        series.mkdir()
        if meta.available:
            from .core.metrics import all_scores

            train_df, test_df, _ = load_prepared(task)
            classes = meta.classes
            y = train_df["y"].to_numpy()
            curves = {}
            for model in report_models(params, task):
                try:
                    record, arrays = load_predictions(task, model)
                except StageOutputError:
                    continue  # the ensemble before it exists
                records[model] = record
                metrics.setdefault("cv", {})[model] = record.cv
                curve = _model_plots(task, model, record, arrays["oof"], y, classes, plot_dir, series)
                if curve is not None:
                    curves[model] = curve
                if task.has_test_labels:
                    scores_test[model] = all_scores(test_df["y"].to_numpy(), arrays["test"])
            if "ensemble" in records:
                _comparison_png(
                    records["ensemble"].weights,
                    f"weight ({records['ensemble'].method})",
                    plot_dir / "ensemble_weights.png",
                    f"{task.name}: ensemble weights",
                    zero_based=True,
                )
            histories = [h for h in (tuning_history(task, model) for model in params.models.rnn) if h]
            for history in histories:
                _tuning_png(history, plot_dir / f"tuning_{history['model']}.png")
            _training_curves(task, params, records, series)
            if curves:
                _roc_png(curves, plot_dir / "roc.png", f"{task.name}: out-of-fold ROC")
            warnings, chance = cv_warnings(task, checks, records, y, len(classes))
            metrics["cv_check"] = {"chance": round(chance, 6), "warnings": len(warnings)}
            for message in warnings:
                log.warning("[report %s] WARNING %s", task.name, message)
            if records:
                _comparison_png(
                    {m: r.cv[task.metric] for m, r in records.items()},
                    task.metric,
                    plot_dir / "model_comparison.png",
                    f"{task.name}: CV {task.metric}",
                )
        else:
            metrics["unavailable_reason"] = meta.reason
            metrics["unavailable_fix"] = meta.fix
        write_text(plot_dir / ".keep", "")
        write_text(series / ".keep", "")
    if scores_test:
        metrics["test"] = scores_test
    write_json(METRICS_DIR / f"{task.name}.json", metrics)
    write_text(
        REPORTS_DIR / f"{task.name}.md",
        _markdown(task, meta, records, scores_test, histories, checks, warnings),
    )
    log.info(
        "[report %s] %s",
        task.name,
        ", ".join(f"{m}={r.cv[task.metric]:.4f}" for m, r in records.items()) or "unavailable",
    )
    return metrics
