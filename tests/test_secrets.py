"""Secrets never reach messages: database URL passwords are masked."""

import traceback

import pytest

from pipeline.core.secrets import mask_url


def test_mask_url_hides_password():
    masked = mask_url("postgresql://optuna:s3cr3t@db.example:5432/studies")
    assert "s3cr3t" not in masked
    assert masked == "postgresql://optuna:***@db.example:5432/studies"


def test_mask_url_inside_a_message_and_without_password():
    text = "cannot connect to mysql+pymysql://u:p%40ss@h/db (timeout); sqlite:///x.db is fine"
    masked = mask_url(text)
    assert "p%40ss" not in masked and "sqlite:///x.db" in masked


PASSWORD = "Pw-9f3e1c"  # distinctive: found in a message only if it leaked


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://optuna:ab/{PASSWORD}@db:5432/studies",  # "/" unescaped in the password
        f"postgresql+psycopg://optuna:{PASSWORD}:x@db/studies",  # ":" in the password
        f"postgresql+psycopg://optuna@db/studies?password={PASSWORD}",  # libpq query parameter
        f"mysql+pymysql://optuna@db/studies?charset=utf8&PWD={PASSWORD}&x=1",
    ],
)
def test_mask_url_hides_every_form_of_password(url):
    masked = mask_url(f"cannot open {url} (refused)")
    assert PASSWORD not in masked and "***" in masked
    assert masked.startswith("cannot open ") and masked.endswith(" (refused)")


def test_mask_url_keeps_urls_without_password():
    text = "see https://www.kaggle.com/settings, sqlite:///data/optuna.db, postgresql://db/x?sslmode=require"
    assert mask_url(text) == text


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://optuna:{PASSWORD}@127.0.0.1:1/nodb",
        f"postgresql+psycopg://optuna:ab/{PASSWORD}@127.0.0.1:1/nodb",
        f"postgresql+psycopg://optuna@127.0.0.1:1/nodb?password={PASSWORD}",
        f"mysql://optuna:{PASSWORD}@127.0.0.1:1/nodb",  # driver not installed: another error path
    ],
)
def test_storage_error_never_shows_the_password(tmp_path, monkeypatch, url):
    from pipeline.core.errors import PipelineError
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.tune import make_storage

    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError) as caught:
        make_storage(url, get_task("competition", parse_params({})))
    message = "".join(traceback.format_exception(caught.value))  # what a -v traceback would show
    assert "cannot open Optuna storage" in message
    assert PASSWORD not in message


def test_storage_error_masks_password(tmp_path, monkeypatch):
    import pytest

    from pipeline.core.errors import PipelineError
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.tune import make_storage

    monkeypatch.chdir(tmp_path)
    task = get_task("competition", parse_params({}))
    with pytest.raises(PipelineError) as caught:
        make_storage("postgresql://user:TopSecret@127.0.0.1:1/nodb", task)
    assert "TopSecret" not in str(caught.value) and "***" in str(caught.value)


def test_unwritable_output_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import os

    from pipeline.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("competition: {source: sample}\n")
    (tmp_path / "data").mkdir()
    os.chmod(tmp_path / "data", 0o500)
    try:
        if os.access(tmp_path / "data", os.W_OK):  # root ignores permissions
            import pytest

            pytest.skip("running as root: permissions are not enforced")
        code = main(["fetch", "--task", "competition"])
    finally:
        os.chmod(tmp_path / "data", 0o700)
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_disk_full_is_a_clear_error_and_keeps_earlier_outputs(tmp_path, monkeypatch, capsys):
    import errno

    from pipeline.__main__ import main
    from pipeline.core import io

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("competition: {source: sample}\n")
    assert main(["fetch", "--task", "competition"]) == 0
    before = (tmp_path / "data/raw/competition/train.csv").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data/raw"))

    monkeypatch.setattr(io.tempfile, "mkdtemp", full_disk)
    assert main(["fetch", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free some disk space" in err
    assert (tmp_path / "data/raw/competition/train.csv").read_bytes() == before


def test_storage_password_in_params_is_refused_without_echoing_it():
    """params.yaml is committed and copied into dvc.lock: a password there is an error."""
    from pipeline.core.errors import ParamsError
    from pipeline.core.params import parse_params

    with pytest.raises(ParamsError) as caught:
        parse_params({"tune": {"storage": "postgresql://optuna:hunter2@db/optuna"}})
    assert "PIPELINE_OPTUNA_STORAGE" in str(caught.value) and "hunter2" not in str(caught.value)
    assert parse_params({"tune": {"storage": "postgresql://optuna@db/optuna"}}).tune.storage


def test_storage_url_from_the_environment_wins_over_params(tmp_path, monkeypatch):
    """The tune stage opens the URL in PIPELINE_OPTUNA_STORAGE when --storage is not given."""
    from pipeline.core.errors import PipelineError
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.tuning import study as study_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_OPTUNA_STORAGE", "postgresql+psycopg://optuna:hunter2@127.0.0.1:9/none")
    params = parse_params({"models": {"rnn": ["lstm"]}})
    opened = []
    monkeypatch.setattr(
        study_module,
        "make_storage",
        lambda url, task: opened.append(url) or (_ for _ in ()).throw(PipelineError("stop")),
    )
    monkeypatch.setattr(study_module, "study_name", lambda *a: "study")
    with pytest.raises(PipelineError):
        study_module.create_study(
            get_task("competition", params), "lstm", params, study_module.resolve_storage(None, params)
        )
    assert opened == ["postgresql+psycopg://optuna:hunter2@127.0.0.1:9/none"]
