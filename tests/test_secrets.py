"""Secrets never reach messages: database URL passwords are masked."""

from pipeline.secrets import mask_url


def test_mask_url_hides_password():
    masked = mask_url("postgresql://optuna:s3cr3t@db.example:5432/studies")
    assert "s3cr3t" not in masked
    assert masked == "postgresql://optuna:***@db.example:5432/studies"


def test_mask_url_inside_a_message_and_without_password():
    text = "cannot connect to mysql+pymysql://u:p%40ss@h/db (timeout); sqlite:///x.db is fine"
    masked = mask_url(text)
    assert "p%40ss" not in masked and "sqlite:///x.db" in masked


def test_storage_error_masks_password(tmp_path, monkeypatch):
    import pytest

    from pipeline.errors import PipelineError
    from pipeline.params import parse_params
    from pipeline.tasks import get_task
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

    from pipeline import io
    from pipeline.__main__ import main

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
