"""params.yaml → typed, validated objects.

Every knob lives in params.yaml; this module is the only place that reads it. A bad
file raises one :class:`~pipeline.errors.ParamsError` that lists every bad key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ParamsError

METRICS = ("accuracy", "f1_weighted", "f1_macro")
DEFAULT_PATH = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Competition(_Section):
    name: str = Field("fake-news", min_length=1)
    source: Literal["sample", "local", "kaggle"] = "sample"
    local_dir: str = ""
    id: str = "id"
    text: tuple[str, ...] = ("title", "author", "text")
    label: str = "label"
    metric: Literal["accuracy", "f1_weighted", "f1_macro"] = "accuracy"

    @model_validator(mode="after")
    def _local_needs_dir(self):
        if self.source == "local" and not self.local_dir:
            raise ValueError("source is 'local' but local_dir is empty: set competition.local_dir "
                             "to the folder holding train.csv and test.csv")
        if not self.text:
            raise ValueError("text must list at least one column")
        return self


class CV(_Section):
    folds: int = Field(5, ge=2, le=20)


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
    max_features: int = Field(300_000, ge=1000)
    max_chars: int = Field(3000, ge=100)
    C: float = Field(2.0, gt=0)


class NBSVM(_Section):
    ngram_max: int = Field(2, ge=1, le=4)
    min_df: int = Field(2, ge=1)
    max_features: int = Field(500_000, ge=1000)
    alpha: float = Field(1.0, gt=0)
    C: float = Field(4.0, gt=0)


class Tfidf(_Section):
    word: WordTfidf = WordTfidf()
    char: CharTfidf = CharTfidf()
    nbsvm: NBSVM = NBSVM()
    svc_C: float = Field(0.5, gt=0)


class Neural(_Section):
    folds: int = Field(2, ge=1, le=20)  # RNNs run the first `folds` CV folds (CPU cost)


class ValidationSource(_Section):
    source: Literal["download", "local", "keras"] = "download"
    local_dir: str = ""


class Validation(_Section):
    tasks: tuple[Literal["imdb", "reuters"], ...] = ("imdb", "reuters")
    imdb: ValidationSource = ValidationSource()
    reuters: ValidationSource = ValidationSource()


class Models(_Section):
    tfidf: tuple[str, ...] = ("word_lr", "char_lr", "nbsvm", "word_svc")
    rnn: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known(self):
        from .models import MODELS  # late import: the registry imports nothing from here

        for family, names in (("tfidf", self.tfidf), ("rnn", self.rnn)):
            wrong = [m for m in names if m not in MODELS or MODELS[m].family != family]
            if wrong:
                known = sorted(m for m, spec in MODELS.items() if spec.family == family)
                raise ValueError(f"unknown {family} model(s) {wrong}; known: {known}")
        return self

    @property
    def all(self) -> tuple[str, ...]:
        return self.tfidf + self.rnn


class Params(_Section):
    seed: int = 20240101
    competition: Competition = Competition()
    cv: CV = CV()
    text: Text = Text()
    models: Models = Models()
    neural: Neural = Neural()
    tfidf: Tfidf = Tfidf()
    validation: Validation = Validation()


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  - {key}: {item['msg']} (got {item.get('input')!r})")
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
