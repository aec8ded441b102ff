"""The ``tune`` stage's charts of a study: Optuna's optimisation history and parameter
importances, drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path


def save_plots(study, out: Path) -> None:
    """``history.png`` and ``importance.png`` in ``out`` (a note in place of a plot it cannot draw)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for name, plot, needed in (
        ("history.png", plot_optimization_history, 1),
        ("importance.png", plot_param_importances, 2),
    ):
        try:
            if len(complete) < needed:
                raise ValueError(f"{len(complete)} completed trial(s)")
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore", ExperimentalWarning)
                ax = plot(study)
            figure = ax.get_figure(root=True)
            if figure is None:
                raise RuntimeError("Optuna's plot drew on no figure")
            figure.savefig(out / name, dpi=100, bbox_inches="tight")
        except (ValueError, RuntimeError) as why:  # e.g. importance needs 2+ distinct trials
            fig, ax = plt.subplots(figsize=(5, 2))
            ax.text(0.5, 0.5, f"{name[:-4]} not available:\n{why}", ha="center", va="center")
            ax.axis("off")
            fig.savefig(out / name, dpi=100)
        plt.close("all")
