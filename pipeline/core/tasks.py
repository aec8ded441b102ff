"""Tasks: the competition and the validation benchmarks, described as data.

Every stage takes a task name and works the same way for all of them: one code path.
The validation tasks (IMDB, Reuters R52) have public test labels, so their test scores
guard the modelling code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .params import Budget, Neural, Params

TASK_NAMES = ("competition", "imdb", "reuters")
DATA = Path("data")


@dataclass(frozen=True)
class RNNWork:
    """How much RNN work a task gets: tuning budget, folds trained, seeds per fold and
    the most epochs a model trains."""

    tuning: Budget
    folds: int
    seeds: int
    epochs: int

    def schedule(self, neural: Neural) -> Neural:
        """``neural`` (patience, learning-rate schedule...) with this task's epoch limit."""
        return neural.model_copy(update={"epochs": self.epochs})


@dataclass(frozen=True)
class Task:
    """What a stage needs to know about a task's data."""

    name: str
    id_col: str
    text_cols: tuple[str, ...]
    label_col: str
    metric: str
    has_test_labels: bool
    # Fixed classes (the competition is binary 0/1); None = taken from train labels.
    classes: tuple[str, ...] | None = None

    @property
    def is_competition(self) -> bool:
        return self.name == "competition"

    def enabled(self, params: Params) -> bool:
        return self.is_competition or self.name in params.validation.tasks

    def models_to_run(self, params: Params) -> tuple[str, ...]:
        """The models this task runs: every listed one, the transformer models only on
        ``transformer.tasks`` (their CPU cost)."""
        extra = params.models.transformer if self.name in params.transformer.tasks else ()
        return params.models.tfidf + params.models.rnn + extra

    def rnn_work(self, params: Params) -> RNNWork:
        """The competition's ``tune.budget`` and ``neural`` folds/seeds/epochs, or the smaller
        ``validation`` ones (one place for that rule)."""
        if self.is_competition:
            n = params.neural
            return RNNWork(params.tune.budget, n.folds, n.seeds, n.epochs)
        v = params.validation
        return RNNWork(v.budget, v.neural_folds, v.neural_seeds, v.neural_epochs)

    # Where each stage reads and writes; one place for the data layout.
    @property
    def raw_dir(self) -> Path:
        return DATA / "raw" / self.name

    @property
    def prepared_dir(self) -> Path:
        return DATA / "prepared" / self.name

    @property
    def features_dir(self) -> Path:
        return DATA / "features" / self.name

    @property
    def embeddings_dir(self) -> Path:
        return DATA / "embeddings" / self.name

    @property
    def encoded_dir(self) -> Path:
        return DATA / "encoded" / self.name

    @property
    def predictions_dir(self) -> Path:
        return DATA / "predictions" / self.name

    @property
    def ensemble_dir(self) -> Path:
        return DATA / "ensemble" / self.name

    def tuning_dir(self, model: str) -> Path:
        return DATA / "tuning" / self.name / model


def get_task(name: str, params: Params) -> Task:
    """Return the :class:`Task` called ``name`` (one of :data:`TASK_NAMES`)."""
    if name == "competition":
        comp = params.competition
        return Task(
            name, comp.id, comp.text, comp.label, comp.metric, has_test_labels=False, classes=("0", "1")
        )
    if name in ("imdb", "reuters"):
        # The validation sources write a normalised id,text,label layout.
        return Task(name, "id", ("text",), "label", "accuracy", has_test_labels=True)
    raise ValueError(f"unknown task {name!r}; expected one of {TASK_NAMES}")
