"""dvc.yaml's code deps and params are exactly what each stage imports and reads.

The derivation (static, see ``tests/stage_deps.py``) follows each stage's command through
the code; a stage that imports a module or reads a params key its dvc.yaml entry does not
list would be skipped by ``dvc repro`` after an edit, serving stale results. A listed file
or key the stage never uses reruns it for nothing. Each failure names the line to change.
"""

from __future__ import annotations

import pytest

from stage_deps import derive, dvc_stages, listed, normalise


@pytest.fixture(scope="module")
def stages():
    found = {}
    for name, expanded in dvc_stages().items():
        files, keys, listed_files, listed_keys = set(), set(), set(), set()
        for stage in expanded:  # foreach/matrix items share one dvc.yaml entry
            more_files, more_keys = derive(stage.cmd)
            files, keys = files | more_files, keys | more_keys
            has_files, has_keys = listed(stage)
            listed_files, listed_keys = listed_files | has_files, listed_keys | has_keys
        found[name] = (files, normalise(keys), listed_files, listed_keys)
    return found


def _where(key: str) -> str:
    return "a `- params.yaml:` entry (every key)" if key == "*" else f"`{key}`"


def test_code_deps_are_the_modules_each_stage_imports(stages):
    problems = []
    for name, (files, _, listed_files, _) in stages.items():
        problems += [
            f"dvc.yaml stage {name!r}: add `- {f}` to its deps (the stage imports it)"
            for f in sorted(files - listed_files)
        ]
        problems += [
            f"dvc.yaml stage {name!r}: remove `- {f}` from its deps (the stage never imports it)"
            for f in sorted(listed_files - files)
        ]
    assert not problems, "\n".join(problems)


def _covers(listed: str, key: str) -> bool:
    return listed in ("*", key) or key.startswith(listed + ".")


def test_params_are_the_keys_each_stage_reads(stages):
    # A listed section (``tune``) covers the keys read below it (``tune.space``).
    problems = []
    for name, (_, keys, _, listed_keys) in stages.items():
        problems += [
            f"dvc.yaml stage {name!r}: add {_where(k)} to its params (the stage reads it)"
            for k in sorted(keys)
            if not any(_covers(had, k) for had in listed_keys)
        ]
        problems += [
            f"dvc.yaml stage {name!r}: remove {_where(k)} from its params (the stage never reads it)"
            for k in sorted(listed_keys)
            if not any(_covers(k, read) or _covers(read, k) for read in keys)
        ]
    assert not problems, "\n".join(problems)


def test_lazy_imports_inside_functions_are_followed():
    # The registry names models/rnn.py's factory and plan hook; the factory imports
    # features/sequences.py inside a function. Training never runs the tune stage's code.
    files, keys = derive("python -m pipeline train --task competition --model lstm")
    assert {"pipeline/models/rnn.py", "pipeline/features/sequences.py", "pipeline/core/workers.py"} <= files
    assert "pipeline/tune.py" not in files and "pipeline/models/tfidf.py" not in files
    assert "neural" in keys and "tfidf.test_predictions" not in keys


def test_a_model_family_s_hooks_stay_out_of_other_families_stages():
    files, keys = derive("python -m pipeline train --task competition --model word_lr")
    assert "pipeline/models/rnn.py" not in files and "pipeline/models/transformer_plan.py" not in files
    assert not {k for k in keys if k.split(".")[0] in ("neural", "transformer", "tune", "models")}
    assert "tfidf.test_predictions" in keys


def test_params_read_through_aliases_and_helpers():
    _, fetch_keys = derive("python -m pipeline fetch --task competition")
    assert {"competition.local_dir", "validation.tasks"} <= fetch_keys  # comp = params.competition
    _, ensemble_keys = derive("python -m pipeline ensemble --task competition")
    assert "cv.folds" in ensemble_keys and "tfidf.word" not in ensemble_keys


def test_a_hash_of_all_params_depends_on_every_key():
    _, keys = derive("python -m pipeline submissions")
    assert keys == {"*"}


def test_keys_are_cut_to_two_levels_and_covered_keys_dropped():
    assert normalise({"tfidf.word.C", "tfidf.word.min_df", "neural", "neural.threads"}) == {
        "tfidf.word",
        "neural",
    }


def test_each_model_trains_in_the_dvc_stage_its_registry_entry_names():
    from pipeline.models import GROUPS, MODELS

    trained = {}
    for name, expanded in dvc_stages().items():
        for stage in expanded:
            argv = stage.cmd.split()
            if argv[3] == "train":
                trained[argv[argv.index("--model") + 1]] = name
    assert trained, "dvc.yaml has no train stage"
    for model, stage in trained.items():
        assert MODELS[model].stage == stage, (
            f"dvc.yaml trains {model!r} in {stage!r}; its registry entry says {MODELS[model].stage!r}"
        )
    assert {spec.stage for spec in MODELS.values()} == {f"train_{g}" for g in GROUPS}
