"""Tests of pipeline.core.params: params.yaml → validated Params, one error listing every bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.core.errors import ParamsError
from pipeline.core.params import Params, load_params, parse_params
from pipeline.models import check_models

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_project_params_yaml_parses():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.cv.folds >= 2
    assert params.competition.metric in ("accuracy", "f1_weighted", "f1_macro")


def test_empty_mapping_gives_defaults():
    params = parse_params({})
    assert params == Params()
    assert params.competition.source == "sample"
    assert params.text.urls == "token"
    assert params.models.tfidf == ("word_lr", "nbsvm", "word_svc", "wordchar_svc")


def _flat(mapping: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; tuples as lists, as YAML has them."""
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def test_defaults_are_params_yaml():
    """One source of defaults: a test built from parse_params runs what the pipeline runs."""
    import yaml

    defaults = _flat(parse_params({}).model_dump(mode="json"))
    project = _flat(yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")))
    differ = [
        f"{key}: params.py {defaults.get(key, '(missing)')!r} vs params.yaml {project.get(key, '(missing)')!r}"
        for key in sorted(defaults.keys() | project.keys())
        if key not in defaults or key not in project or defaults[key] != project[key]
    ]
    assert not differ, "defaults in pipeline/core/params.py differ from params.yaml:\n" + "\n".join(differ)


def test_empty_file_gives_defaults(tmp_path):
    assert load_params(_write(tmp_path, "")) == Params()


def test_override_one_key(tmp_path):
    params = load_params(_write(tmp_path, "cv:\n  folds: 3\ntext:\n  lowercase: false\n"))
    assert params.cv.folds == 3
    assert params.text.lowercase is False
    assert params.text.urls == "token"


def test_params_are_frozen():
    params = Params()
    with pytest.raises(ValidationError, match="frozen"):
        params.cv.folds = 3


def test_one_error_lists_every_bad_key():
    raw = {"cv": {"folds": 1}, "competition": {"metric": "auc"}, "bogus": 1, "text": {"urls": "maybe"}}
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    message = str(info.value)
    for key in ("cv.folds", "competition.metric", "bogus", "text.urls"):
        assert key in message, key
    assert "'auc'" in message  # the bad value is shown


def test_one_error_lists_field_and_cross_field_problems():
    # source=local with no local_dir is a cross-field check; it must still be reported when
    # another key of the same section is also wrong.
    raw = {"competition": {"source": "local", "local_dir": "", "metric": "auc"}}
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    message = str(info.value)
    assert "competition.metric" in message
    assert "local_dir" in message


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"cv": {"folds": 1}}, "cv.folds"),
        ({"cv": {"folds": 21}}, "cv.folds"),
        ({"competition": {"source": "ftp"}}, "competition.source"),
        ({"competition": {"name": ""}}, "competition.name"),
        ({"text": {"max_chars": 10}}, "text.max_chars"),
        ({"text": {"lowercase": "sometimes"}}, "text.lowercase"),
        ({"tfidf": {"word": {"C": 0}}}, "tfidf.word.C"),
        ({"tfidf": {"word": {"typo": 1}}}, "tfidf.word.typo"),
        ({"validation": {"tasks": ["imdb", "mnist"]}}, "validation.tasks"),
        ({"validation": {"imdb": {"source": "s3"}}}, "validation.imdb.source"),
        ({"seed": "abc"}, "seed"),
        ({"neural": {"seeds": 0}}, "neural.seeds"),
        ({"neural": {"seeds": 21}}, "neural.seeds"),
        ({"neural": {"reduce_lr": 1.0}}, "neural.reduce_lr"),
        ({"neural": {"reduce_lr": -0.1}}, "neural.reduce_lr"),
        ({"validation": {"neural_seeds": 0}}, "validation.neural_seeds"),
        ({"validation": {"neural_epochs": 0}}, "validation.neural_epochs"),
        ({"tune": {"objective": "accuracy"}}, "tune.objective"),
        ({"tfidf": {"test_predictions": "mean"}}, "tfidf.test_predictions"),
        ({"tfidf": {"wordchar_svc": {"C": 0}}}, "tfidf.wordchar_svc.C"),
        ({"tfidf": {"wordchar_svc": {"class_weight": "auto"}}}, "tfidf.wordchar_svc.class_weight"),
        ({"transformer": {"finetune": {"max_train_rows": 99}}}, "transformer.finetune.max_train_rows"),
    ],
)
def test_bad_key_is_named(raw, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params(raw)


def test_local_source_needs_local_dir():
    with pytest.raises(ParamsError, match="local_dir"):
        parse_params({"competition": {"source": "local", "local_dir": ""}})


def test_local_source_needs_local_dir_also_when_omitted():
    with pytest.raises(ParamsError, match="local_dir"):
        parse_params({"competition": {"source": "local"}})


def test_local_source_with_local_dir_is_valid():
    params = parse_params({"competition": {"source": "local", "local_dir": "/data/fake-news"}})
    assert params.competition.local_dir == "/data/fake-news"


def test_empty_text_columns_is_an_error():
    with pytest.raises(ParamsError, match="text"):
        parse_params({"competition": {"text": []}})


def test_unknown_tfidf_model_is_an_error():
    # The registry, not the params schema, knows the model names (the core imports no model).
    with pytest.raises(ParamsError) as info:
        check_models(parse_params({"models": {"tfidf": ["word_lr", "bert"]}}))
    message = str(info.value)
    assert "models.tfidf" in message and "'bert'" in message
    assert "word_lr" in message  # the known models are listed


def test_rnn_model_in_tfidf_family_is_an_error():
    with pytest.raises(ParamsError, match="models.tfidf.*lstm"):
        check_models(parse_params({"models": {"tfidf": ["lstm"]}}))


def test_known_models_are_valid():
    params = check_models(parse_params({"models": {"tfidf": ["nbsvm"], "rnn": ["gru"], "transformer": []}}))
    assert params.models.all == ("nbsvm", "gru")


def test_the_cli_refuses_an_unknown_model_before_any_stage_runs(tmp_path, capsys):
    from pipeline.__main__ import main

    (tmp_path / "params.yaml").write_text("models: {rnn: [lstm, bert]}\n", encoding="utf-8")
    assert main(["--params", str(tmp_path / "params.yaml"), "summary"]) == 2
    assert "models.rnn: unknown rnn model(s) ['bert']" in capsys.readouterr().err


def test_invalid_yaml_names_the_path(tmp_path):
    path = _write(tmp_path, "cv:\n  folds: [5\n")
    with pytest.raises(ParamsError, match="not valid YAML") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "params.yaml"
    with pytest.raises(ParamsError, match="not found") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_bad_value_in_file_names_the_path_and_key(tmp_path):
    path = _write(tmp_path, "cv:\n  folds: 1\n")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(path) in str(info.value) and "cv.folds" in str(info.value)


def test_top_level_not_a_mapping(tmp_path):
    with pytest.raises(ParamsError):
        load_params(_write(tmp_path, "- just\n- a list\n"))


def test_params_error_is_a_value_error():
    # Callers may catch ValueError; the CLI catches PipelineError.
    with pytest.raises(ValueError):
        parse_params({"cv": {"folds": 0}})


@pytest.mark.parametrize(
    ("cv", "key"),
    [({"ladder": [0.5, 1.5]}, "cv.ladder"), ({"max_group_share": 0}, "cv.max_group_share")],
)
def test_cv_grouping_search_settings_are_validated(cv, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params({"cv": cv})


def test_ensemble_doubt_names_its_choices():
    with pytest.raises(ParamsError, match=r"ensemble\.doubt"):
        parse_params({"ensemble": {"doubt": "maybe"}})
