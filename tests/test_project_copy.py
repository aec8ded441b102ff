"""The end-to-end project copies never download: validation tasks point at no local folder."""

from __future__ import annotations

import shutil

import pytest
from conftest import ROOT, _validation_without_download

from pipeline.core.params import load_params


def test_copy_params_use_a_source_that_never_downloads(tmp_path):
    params_yaml = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params_yaml)
    _validation_without_download(params_yaml)
    copied, original = load_params(params_yaml), load_params(ROOT / "params.yaml")
    for task in ("imdb", "reuters"):
        assert getattr(copied.validation, task).source == "local"
        assert getattr(copied.validation, task).local_dir == ""
    assert copied.validation.tasks == original.validation.tasks
    assert copied.model_dump(exclude={"validation"}) == original.model_dump(exclude={"validation"})


def test_copy_refuses_a_params_layout_it_cannot_rewrite(tmp_path):
    params_yaml = tmp_path / "params.yaml"
    params_yaml.write_text("validation:\n  imdb:\n    source: download\n")
    with pytest.raises(ValueError, match="imdb"):
        _validation_without_download(params_yaml)
