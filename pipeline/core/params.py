"""params.yaml → typed, validated objects.

Every knob lives in params.yaml; this module is the only place that reads it. A bad
file raises one :class:`~pipeline.core.errors.ParamsError` that lists every bad key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ParamsError

DEFAULT_PATH = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Competition(_Section):
    name: str = Field("fake-news", min_length=1)
    source: Literal["sample", "local", "kaggle"] = "sample"
    local_dir: str = Field("", validate_default=True)
    id: str = "id"
    text: tuple[str, ...] = ("title", "author", "text")
    label: str = "label"
    metric: Literal["accuracy", "f1_weighted", "f1_macro"] = "accuracy"

    # Field validators (not a model validator): they run even when another key is invalid,
    # so one ParamsError lists every bad key. `source` is declared before `local_dir`.
    @field_validator("local_dir")
    @classmethod
    def _local_needs_dir(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("source") == "local" and not value:
            raise ValueError(
                "source is 'local' but local_dir is empty: set competition.local_dir "
                "to the folder holding train.csv and test.csv"
            )
        return value

    @field_validator("text")
    @classmethod
    def _some_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("text must list at least one column")
        return value


class CV(_Section):
    """How folds are made (docs/cv.md): ``auto`` picks the candidate that looks like the test split."""

    folds: int = Field(5, ge=2, le=20)
    strategy: Literal["auto", "stratified", "group", "time"] = "auto"
    group: str = Field("", validate_default=True)  # a train column, or columns joined by "+"
    time: str = Field("", validate_default=True)  # a train column of numbers or dates
    near_duplicate: float = Field(0.7, gt=0, le=1)  # TF-IDF cosine at which rows are near-duplicates
    sample_rows: int = Field(1000, ge=50)  # rows per side in the fold-resemblance/adversarial checks
    # auto: the cosine thresholds whose near-duplicate components become candidate groupings
    ladder: tuple[float, ...] = (0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1)
    # auto: a candidate whose largest group exceeds this share of a fold's rows is not used
    max_group_share: float = Field(0.5, gt=0, le=1)

    @field_validator("ladder")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [t for t in value if not 0 < t <= 1]
        if bad:
            raise ValueError(f"every threshold must lie in (0, 1], got {bad}")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("group", "time")
    @classmethod
    def _needed_by_strategy(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("strategy") == info.field_name and not value.strip():
            raise ValueError(
                f"strategy is {info.field_name!r} but cv.{info.field_name} is empty: "
                f"set cv.{info.field_name} to a train.csv column"
            )
        return value.strip()


class Text(_Section):
    lowercase: bool = True
    keep_digits: bool = True
    keep_punctuation: bool = True
    urls: Literal["token", "keep", "drop"] = "token"
    max_chars: int = Field(100_000, ge=100)


class WordTfidf(_Section):
    ngram_max: int = Field(2, ge=1, le=4)
    min_df: int = Field(2, ge=1)
    max_features: int = Field(300_000, ge=1000)
    C: float = Field(4.0, gt=0)


class CharTfidf(_Section):
    ngram_min: int = Field(2, ge=1)
    ngram_max: int = Field(5, ge=1, le=8)
    min_df: int = Field(3, ge=1)
    hash_bits: int = Field(21, ge=12, le=24)  # 2**hash_bits hashed n-gram columns
    max_chars: int = Field(3000, ge=100)
    C: float = Field(2.0, gt=0)


class NBSVM(_Section):
    ngram_max: int = Field(3, ge=1, le=4)
    min_df: int = Field(2, ge=1)
    hash_bits: int = Field(24, ge=12, le=26)  # 2**hash_bits hashed n-gram columns
    alpha: float = Field(1.0, gt=0)
    C: float = Field(4.0, gt=0)


class SvcTfidf(_Section):
    """The reference model: plain (not sublinear) word TF-IDF + LinearSVC."""

    ngram_max: int = Field(1, ge=1, le=4)
    min_df: int = Field(1, ge=1)
    C: float = Field(1.0, gt=0)
    class_weight: Literal["none", "balanced"] = "balanced"  # balanced: rare classes (R52) count


class WordCharSvc(_Section):
    """LinearSVC on the word_svc and char_lr features side by side (their own sections)."""

    C: float = Field(1.0, gt=0)
    class_weight: Literal["none", "balanced"] = "balanced"


class Tfidf(_Section):
    # refit: test predictions from one model fitted on every train row (it sees all of them,
    # and every rare class); fold_mean: the mean of the CV fold models' predictions.
    test_predictions: Literal["refit", "fold_mean"] = "refit"
    word: WordTfidf = WordTfidf()
    char: CharTfidf = CharTfidf()
    nbsvm: NBSVM = NBSVM()
    svc: SvcTfidf = SvcTfidf()
    wordchar_svc: WordCharSvc = WordCharSvc()


class Tokenize(_Section):
    vocab_size: int = Field(30_000, ge=100)  # most frequent train tokens kept
    min_count: int = Field(2, ge=1)  # ... that occur at least this often
    max_tokens: int = Field(1000, ge=10)  # tokens stored per document (models cut further)


class Embed(_Section):
    method: Literal["word2vec", "none"] = "word2vec"  # none: RNN embeddings start random
    dim: int = Field(128, ge=4)  # >= every embedding_dim the RNNs use
    window: int = Field(5, ge=1)
    epochs: int = Field(5, ge=1)
    architecture: Literal["cbow", "skipgram"] = "cbow"


class RNNConfig(_Section):
    """One LSTM/GRU configuration: the tuned values, or the fixed defaults."""

    embedding_dim: int = Field(128, ge=4)
    units: int = Field(64, ge=4)
    layers: int = Field(2, ge=1, le=4)
    bidirectional: bool = False
    dropout: float = Field(0.3, ge=0, lt=1)
    spatial_dropout: float = Field(0.2, ge=0, lt=1)
    dense_units: int = Field(64, ge=0)
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=1)
    seq_len: int = Field(300, ge=4)
    vocab_size: int = Field(30_000, ge=100)
    truncate: Literal["head", "tail", "head_tail"] = "head_tail"


class Neural(_Section):
    folds: int = Field(2, ge=1, le=20)  # RNNs run the first `folds` CV folds (CPU cost)
    seeds: int = Field(3, ge=1, le=20)  # models averaged per fold, one per seed (seed, seed+1, ...)
    epochs: int = Field(8, ge=1)  # maximum; early stopping picks the best epoch
    patience: int = Field(2, ge=1)
    reduce_lr: float = Field(0.3, ge=0, lt=1)  # learning-rate factor after an epoch without gain; 0 = off
    processes: int = Field(2, ge=1, le=64)  # trials / folds run side by side, one per process
    threads: int = Field(0, ge=0)  # TensorFlow threads per process; 0 = cores / processes
    defaults: RNNConfig = RNNConfig()  # used as is when tuning is off, and as tuning's first trial


class SearchSpace(_Section):
    """Categorical choices as lists; floats as [low, high] (learning_rate on a log scale)."""

    embedding_dim: tuple[int, ...] = (64, 128)
    units: tuple[int, ...] = (32, 64, 96)
    layers: tuple[int, ...] = (1, 2)
    bidirectional: tuple[bool, ...] = (True, False)
    dropout: tuple[float, float] = (0.1, 0.5)
    spatial_dropout: tuple[float, float] = (0.0, 0.4)
    learning_rate: tuple[float, float] = (3e-4, 3e-3)
    batch_size: tuple[int, ...] = (64, 128)
    seq_len: tuple[int, ...] = (150, 300)
    truncate: tuple[Literal["head", "tail", "head_tail"], ...] = ("head", "head_tail")

    @model_validator(mode="after")
    def _ranges(self):
        for name in ("dropout", "spatial_dropout", "learning_rate"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high, got {[low, high]}")
        return self


class Budget(_Section):
    n_trials: int = Field(8, ge=0)  # 0 = no tuning: neural.defaults are used
    timeout: float = Field(1800, gt=0)  # seconds per tuned model (one study each)


class Tune(_Section):
    budget: Budget = Budget()
    # log_loss: trials minimise the validation log loss (smooth: on a small fold accuracy moves
    # in coarse steps and TPE chases ties; docs/benchmarks.md); metric: maximise competition.metric.
    objective: Literal["log_loss", "metric"] = "log_loss"
    storage: str = ""  # "" = JournalFileBackend under data/optuna/; or any Optuna URL
    startup_trials: int = Field(4, ge=0)  # random trials before TPE
    pruner_warmup_epochs: int = Field(1, ge=0)
    max_train_rows: int = Field(8000, ge=100)  # trials train on a seeded subsample of this size
    space: SearchSpace = SearchSpace()

    @field_validator("storage")
    @classmethod
    def _no_password(cls, value: str) -> str:
        from .secrets import mask_url

        if mask_url(value) != value:  # DVC would copy it into dvc.lock, git into history
            raise ValueError(
                f"storage {mask_url(value)!r} holds a password: put the URL in the "
                "PIPELINE_OPTUNA_STORAGE environment variable (or pass --storage) instead"
            )
        return value


class ValidationSource(_Section):
    source: Literal["download", "local", "keras"] = "download"
    local_dir: str = ""


class Validation(_Section):
    tasks: tuple[Literal["imdb", "reuters"], ...] = ("imdb", "reuters")
    budget: Budget = Budget(n_trials=0, timeout=600)  # 0: validation tasks use neural.defaults
    neural_folds: int = Field(2, ge=1, le=20)  # RNN folds on the validation tasks
    neural_seeds: int = Field(1, ge=1, le=20)  # RNN seeds averaged per fold there
    neural_epochs: int = Field(4, ge=1)  # most epochs an RNN trains there
    imdb: ValidationSource = ValidationSource()
    reuters: ValidationSource = ValidationSource()


class Models(_Section):
    tfidf: tuple[str, ...] = ("word_lr", "nbsvm", "word_svc", "wordchar_svc")
    rnn: tuple[str, ...] = ("lstm", "gru")
    transformer: tuple[str, ...] = (
        "frozen_lr",
        "finetune",
    )  # pretrained encoders (families "frozen", "finetune")

    @property
    def all(self) -> tuple[str, ...]:
        return self.tfidf + self.rnn + self.transformer


class FineTuneSpace(_Section):
    """Optuna space of the fine-tuned model: learning rate [low, high] (log scale), choices."""

    learning_rate: tuple[float, float] = (2e-5, 1e-4)
    epochs: tuple[int, ...] = (1, 2, 3)
    max_tokens: tuple[int, ...] = (64, 96, 128)

    @model_validator(mode="after")
    def _range(self):
        low, high = self.learning_rate
        if not 0 < low <= high:
            raise ValueError(f"learning_rate must be [low, high] with 0 < low <= high, got {[low, high]}")
        return self


class _LongText(_Section):
    """How texts longer than ``max_tokens`` are read: ``head_tail`` (their first and last
    tokens) or ``windows`` (windows of ``max_tokens`` overlapping by ``window_overlap``
    tokens, at most ``max_windows`` per text, spread from start to end; pooled by the mean)."""

    max_tokens: int = Field(256, ge=8, le=512)
    long_text: Literal["head_tail", "windows"] = "head_tail"
    max_windows: int = Field(8, ge=1, le=64)  # windows per text at most (cost: up to this many times)
    window_overlap: int = Field(32, ge=0)

    @field_validator("window_overlap")
    @classmethod
    def _overlap_below_half(cls, value: int, info: ValidationInfo) -> int:
        body = info.data.get("max_tokens", 8) - 2  # [CLS] and [SEP] in every window
        if value > body // 2:
            raise ValueError(
                f"window_overlap {value} must be at most half a window ({body // 2}: max_tokens "
                f"{body + 2} less [CLS] and [SEP], halved); lower window_overlap or raise max_tokens"
            )
        return value


class FineTune(_LongText):
    """The whole encoder + a classification head, trained per fold (AdamW, warm-up, decay)."""

    folds: int = Field(2, ge=1, le=20)  # the first `folds` CV folds (CPU cost: see docs)
    processes: int = Field(1, ge=1, le=64)  # folds side by side; threads from neural.threads
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)  # share of the steps with a rising learning rate
    epochs: int = Field(2, ge=1)
    patience: int = Field(1, ge=1)  # early stopping on the fold's validation loss
    batch_size: int = Field(32, ge=1)
    # 0 = every row; else a fold trains on a seeded subsample of at most this many rows
    max_train_rows: int = Field(0, ge=0)
    max_tokens: int = Field(96, ge=8, le=512)
    window_overlap: int = Field(
        16, ge=0
    )  # long_text: windows (training on windows, mean of their predictions)
    dropout: float = Field(0.1, ge=0, lt=1)
    budget: Budget = Budget(n_trials=0, timeout=3600)  # Optuna trials on fold 0 (0: the values above)
    space: FineTuneSpace = FineTuneSpace()

    @field_validator("max_train_rows")
    @classmethod
    def _cap(cls, value: int) -> int:
        if 0 < value < 100:
            raise ValueError(f"{value} rows are too few to fine-tune on: 0 (every row) or at least 100")
        return value


class Transformer(_LongText):
    checkpoint: str = Field("packaged", min_length=1)  # packaged | HF-format folder | hf://owner/name
    sha256: str = ""  # expected model.safetensors sha256 of a folder ("" = not checked)
    tasks: tuple[Literal["competition", "imdb", "reuters"], ...] = ("competition",)
    # auto: bfloat16 where the hardware has bfloat16 matrix units, else float32 (pipeline/features/precision.py)
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    max_tokens: int = Field(256, ge=8, le=512)  # encode: tokens per text (or per window)
    pool_layers: int = Field(4, ge=1, le=48)  # encode: the last layers' mean-pooled states ...
    layer_pooling: Literal["mean", "concat"] = "concat"  # ... averaged or side by side (docs/transformers.md)
    batch_size: int = Field(32, ge=1)
    C: float = Field(1.0, gt=0)  # frozen model: logistic-regression regularisation
    finetune: FineTune = FineTune()


class Ensemble(_Section):
    methods: tuple[Literal["stack", "weighted", "best_single"], ...] = ("stack", "weighted", "best_single")
    stack_C: float = Field(1.0, gt=0)
    rank: bool = False  # weighted: average ranks instead of probabilities (binary tasks)
    # A blend ships only when the paired bootstrap puts it above the best single model with
    # at least this confidence (docs/cv.md); 0 = always ship the best inner-CV method.
    guard: float = Field(0.5, ge=0, lt=1)
    guard_resamples: int = Field(1000, ge=100)
    # When prepare's checks say CV cannot be trusted (folds unlike the test split, opposite-label
    # twins still split, train/test distinguishable) or every model is at chance: "mean" ships
    # the plain average of the TF-IDF models (docs/cv.md); "cv" picks on CV regardless.
    doubt: Literal["mean", "cv"] = "mean"

    @model_validator(mode="after")
    def _some(self):
        if not self.methods:
            raise ValueError("methods must list at least one ensembler")
        return self


class Params(_Section):
    """The whole params.yaml."""

    seed: int = 20240101
    competition: Competition = Competition()
    cv: CV = CV()
    text: Text = Text()
    models: Models = Models()
    tokenize: Tokenize = Tokenize()
    embed: Embed = Embed()
    neural: Neural = Neural()
    tune: Tune = Tune()
    tfidf: Tfidf = Tfidf()
    ensemble: Ensemble = Ensemble()
    validation: Validation = Validation()
    transformer: Transformer = Transformer()

    @model_validator(mode="after")
    def _defaults_in_space(self):
        # The first trial is neural.defaults: each categorical default must be a choice.
        space, defaults = self.tune.space, self.neural.defaults
        bad = [
            f"{name}={getattr(defaults, name)!r} not in {list(getattr(space, name))}"
            for name in (
                "embedding_dim",
                "units",
                "layers",
                "bidirectional",
                "batch_size",
                "seq_len",
                "truncate",
            )
            if getattr(defaults, name) not in getattr(space, name)
        ]
        if bad:
            raise ValueError(
                "neural.defaults must lie in tune.space (it is the first trial): " + "; ".join(bad)
            )
        return self

    @model_validator(mode="after")
    def _vectors_wide_enough(self):
        widest = max(self.neural.defaults.embedding_dim, *self.tune.space.embedding_dim)
        if self.embed.method != "none" and self.embed.dim < widest:
            raise ValueError(
                f"embed.dim={self.embed.dim} is narrower than embedding_dim={widest} "
                "(neural.defaults or tune.space): raise embed.dim to at least that"
            )
        return self


def _describe(error: ValidationError) -> str:
    from .secrets import mask_url

    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(mask_url(f"  - {key}: {item['msg']} (got {item.get('input')!r})"))
    return "\n".join(lines)


def parse_params(raw: dict) -> Params:
    """Validate a params mapping; raise :class:`ParamsError` listing every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as error:
        raise ParamsError(f"invalid params:\n{_describe(error)}") from None


def load_params(path: str | Path = DEFAULT_PATH) -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root (where dvc.yaml is)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from None
    try:
        return parse_params(raw)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
