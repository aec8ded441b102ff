"""The model registry: name → how to build a per-fold trainer, and how its folds run.

A model factory takes ``(task, params, train, test, n_classes, **plan.trainer_args)`` and
returns a callable ``fit_predict(fold: Fold) -> FoldResult`` (:mod:`.common`); TF-IDF trainers
also accept a fold with no validation rows (the refit on all train rows).
``train.py`` runs every model through the same fold loop; what differs by family (which
folds, how many processes, a refit, a task that does not run the model) comes from the
optional hooks of its :class:`ModelSpec`. Adding a model is adding one entry here.

Factories and hooks are imported on use (:func:`_lazy`): a stage imports, and its
``dvc.yaml`` entry depends on, only its own family's code and params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.params import Params
    from .common import Fold, FoldResult

FitPredict = Callable[["Fold"], "FoldResult"]


@dataclass(frozen=True)
class FoldPlan:
    """How ``train.py``'s fold loop runs a model (what a :attr:`ModelSpec.plan` returns)."""

    folds: int  # the first ``folds`` CV folds run
    params: Params  # as the fold trainers see them (e.g. TensorFlow threads per process)
    processes: int = 1  # folds side by side, one per process
    refit: bool = False  # then fit on every train row: the test predictions come from that fit
    record: dict[str, Any] = field(default_factory=dict)  # added to the model's record
    trainer_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the factory


GROUPS = ("tfidf", "rnn", "transformer")  # the lists of params.yaml's `models:` section


@dataclass(frozen=True)
class ModelSpec:
    """One model: its name, where it is listed and trained, and how its folds run.

    ``group`` is the one word that ties a model to the rest of the project: the
    ``models.<group>`` list of params.yaml that names it, and the ``train_<group>`` DVC stage
    (:attr:`stage`) that trains it. ``family`` says how it is built within the group.
    """

    name: str
    family: str  # "tfidf", "rnn" (tuned, may use fewer folds), "frozen" or "finetune" (transformers)
    description: str
    factory: Callable[..., FitPredict]
    group: str = ""  # one of GROUPS; "" = the family's name
    tunable: bool = True  # rnn models only: has a `tune` stage search space
    # Optional hooks, each ``(task, model, params)``, run by train.py in this order:
    # why this task does not run the model (None: it does; placeholder outputs are written)
    skip: Callable[..., str | None] | None = None
    # run once before the folds: ``(params, record info)``
    before_folds: Callable[..., tuple] | None = None
    # the :class:`FoldPlan` (None: every CV fold in this process, no refit)
    plan: Callable[..., FoldPlan] | None = None

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.family)
        if self.group not in GROUPS:
            raise ValueError(f"model {self.name!r}: group {self.group!r} is not one of {GROUPS}")

    @property
    def stage(self) -> str:
        """The DVC stage (matrix over task and model) that trains this model."""
        return f"train_{self.group}"


def in_group(group: str) -> list[str]:
    """The registry's models listed under ``models.<group>`` in params.yaml, sorted."""
    return sorted(name for name, spec in MODELS.items() if spec.group == group)


def check_models(params: Params) -> Params:
    """``params`` if every name in its ``models`` lists is a registry model of that group, else a
    :class:`~pipeline.core.errors.ParamsError` naming the key, the unknown names and the known
    ones. The registry, not the params schema, knows the names (the core imports no model code).
    """
    from ..core.errors import ParamsError

    problems = []
    for group in GROUPS:
        known = in_group(group)
        wrong = [m for m in getattr(params.models, group) if m not in known]
        if wrong:
            problems.append(f"models.{group}: unknown {group} model(s) {wrong}; known: {known}")
    if problems:
        raise ParamsError("invalid params:\n" + "\n".join(problems))
    return params


def _lazy(module: str, function: str) -> Callable[..., Any]:
    # Import on use: the TF-IDF stages must not pay for importing TensorFlow.
    # tests/stage_deps.py reads `module` and `function` from this closure.
    def factory(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(*args, **kwargs)

    return factory


def _tfidf(name: str, description: str) -> ModelSpec:
    return ModelSpec(name, "tfidf", description, _lazy("tfidf", name), plan=_lazy("tfidf", "tfidf_plan"))


def _tuned_rnn(name: str, description: str) -> ModelSpec:
    return ModelSpec(name, "rnn", description, _lazy("rnn", name), plan=_lazy("rnn", "tuned_plan"))


def _transformer(name: str, description: str, **hooks: Any) -> ModelSpec:
    # Both run on the tasks in `transformer.tasks` only, after checking the checkpoint.
    return ModelSpec(
        name,
        name if name == "finetune" else "frozen",
        description,
        _lazy("transformer", name),
        group="transformer",
        tunable=False,
        skip=_lazy("transformer_plan", "unless_transformer_task"),
        before_folds=_lazy("transformer", "before_folds"),
        **hooks,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _tfidf("word_lr", "word 1-2-gram TF-IDF + logistic regression"),
        _tfidf("char_lr", "char 2-5-gram TF-IDF + logistic regression"),
        _tfidf("nbsvm", "NB-weighted logistic regression (Wang & Manning)"),
        _tfidf("word_svc", "plain word TF-IDF + LinearSVC (reference baseline)"),
        _tfidf("wordchar_svc", "word and char TF-IDF side by side + LinearSVC"),
        _tuned_rnn("lstm", "stacked (Bi)LSTM tuned with Optuna"),
        _tuned_rnn("gru", "stacked (Bi)GRU tuned with Optuna"),
        ModelSpec(
            "lstm_baseline",
            "rnn",
            "lecture-style Embedding(5000,100) → LSTM(100) reference, not tuned",
            _lazy("rnn", "lstm_baseline"),
            tunable=False,
            plan=_lazy("rnn", "baseline_plan"),
        ),
        _transformer("frozen_lr", "frozen pretrained-encoder mean embeddings + logistic regression"),
        _transformer(
            "finetune",
            "pretrained encoder fine-tuned whole + mean pooling + linear head",
            plan=_lazy("transformer_plan", "finetune_plan"),
        ),
    )
}
