"""Tests of ``python -m pipeline submit`` (in process): files are checked against the sample
submission and submissions/index.json before anything is sent, and nothing is sent
without Kaggle credentials."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from fakepreds import make_submission_project, write_source
from pipeline.__main__ import main
from pipeline.core.io import read_json

ENSEMBLE_CSV = Path("submissions/fake-news/ensemble.csv")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project folder after `dvc repro`: params.yaml, predictions, submissions + index."""
    return make_submission_project(tmp_path_factory.mktemp("template"))


@pytest.fixture
def project(template, tmp_path, monkeypatch):
    """A fresh copy of the template as the current directory, with no Kaggle credentials and
    a Kaggle client that fails the test if anything is sent."""
    root = tmp_path / "project"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; keep it test-local
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    sent = []

    def no_network(*args, **kwargs):
        sent.append(args)
        raise AssertionError("the test tried to reach Kaggle")

    monkeypatch.setattr("pipeline.sources.kaggle._call", no_network)
    monkeypatch.setattr("pipeline.sources.kaggle.check_network", no_network)
    return SimpleNamespace(root=root, home=tmp_path / "home", sent=sent)


def submit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["submit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def index_entry(model: str) -> dict:
    return read_json("submissions/index.json")["files"][f"fake-news/{model}.csv"]


def edit(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False, lineterminator="\n")


def rejected(capsys, *fragments: str, args=("--dry-run",)) -> str:
    code, out, err = submit(capsys, *args)
    assert code == 2, (out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err and "OK" not in out
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


def test_dry_run_accepts_the_pipelines_file(project, capsys):
    code, out, err = submit(capsys, "--dry-run")
    assert code == 0, err
    entry = index_entry("ensemble")
    assert out.startswith("OK: ")
    assert str(ENSEMBLE_CSV) in out and "(40 rows)" in out
    assert f"ensemble: CV accuracy {entry['cv_accuracy']:.4f}; commit abc1234" in out
    assert "fake-news" in out
    assert project.sent == []


def test_dry_run_names_the_chosen_model(project, capsys):
    code, out, err = submit(capsys, "--dry-run", "--file", "submissions/fake-news/char_lr.csv")
    assert code == 0, err
    assert f"char_lr: CV accuracy {index_entry('char_lr')['cv_accuracy']:.4f}; commit abc1234" in out


def test_dry_run_custom_message(project, capsys):
    code, out, _ = submit(capsys, "--dry-run", "--message", "my try")
    assert code == 0 and out.rstrip().endswith("message: my try")


def test_rejects_wrong_ids(project, capsys):
    edit(ENSEMBLE_CSV, lambda f: f.assign(id=f["id"].where(f.index != 3, "999999")))
    rejected(capsys, str(ENSEMBLE_CSV), "ids differ", "1 missing", "'999999'")


def test_rejects_missing_ids(project, capsys):
    edit(ENSEMBLE_CSV, lambda f: f.iloc[:-5])
    rejected(capsys, "ids differ", "5 missing", "0 unknown")


def test_rejects_extra_column(project, capsys):
    edit(ENSEMBLE_CSV, lambda f: f.assign(proba="0.5"))
    rejected(capsys, "columns", "'proba'", "['id', 'label']")


def test_rejects_non_integer_label(project, capsys):
    edit(ENSEMBLE_CSV, lambda f: f.assign(label=f["label"].where(f.index != 6, "0.7")))
    rejected(capsys, "'label'", "'0.7'", "row 8", "['0', '1']")


def test_rejects_wrong_row_order(project, capsys):
    edit(ENSEMBLE_CSV, lambda f: f.iloc[::-1])
    rejected(capsys, "row 2", "order")


def test_rejects_missing_file(project, capsys):
    ENSEMBLE_CSV.unlink()
    rejected(capsys, str(ENSEMBLE_CSV), "not found")


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_rejects_unknown_file_unless_forced(project, capsys, where):
    path = Path("mine.csv") if where == "outside" else Path("submissions/fake-news/copy.csv")
    shutil.copyfile(ENSEMBLE_CSV, path)
    err = rejected(
        capsys, str(path), "unknown file", "index.json", "--force", args=("--dry-run", "--file", str(path))
    )
    assert "sha256" not in err

    code, out, err = submit(capsys, "--dry-run", "--force", "--file", str(path))
    assert code == 0, err
    assert out.startswith("OK: ") and f"{path.name} (manual)" in out


def test_rejects_file_edited_after_the_pipeline_unless_forced(project, capsys):
    edit(
        ENSEMBLE_CSV,
        lambda f: f.assign(label=f["label"].where(f.index != 0, "1" if f["label"][0] == "0" else "0")),
    )
    rejected(capsys, str(ENSEMBLE_CSV), "modified", "sha256", "--force")

    code, out, err = submit(capsys, "--dry-run", "--force")
    assert code == 0, err
    assert out.startswith("OK: ")


def test_rejected_when_no_index(project, capsys):
    Path("submissions/index.json").unlink()
    rejected(capsys, "unknown file")


HOW_TO = (
    "no Kaggle credentials found",
    "https://www.kaggle.com/settings",
    "KAGGLE_USERNAME",
    "KAGGLE_KEY",
    "kaggle.json",
    "chmod 600",
    "KAGGLE_API_TOKEN",
)


def test_submit_without_credentials_sends_nothing(project, capsys):
    rejected(capsys, *HOW_TO, args=())
    assert project.sent == []
    assert not (project.home / ".kaggle").exists()


def test_submit_forced_without_credentials_sends_nothing(project, capsys):
    shutil.copyfile(ENSEMBLE_CSV, "mine.csv")
    rejected(capsys, *HOW_TO, args=("--force", "--file", "mine.csv"))
    assert project.sent == []


def test_list_without_credentials(project, capsys):
    rejected(capsys, *HOW_TO, args=("--list",))
    assert project.sent == []


@pytest.fixture
def rewritten(project, monkeypatch):
    """Rewrite the submissions as the stage would, after fetching from another source."""
    from pipeline.core.params import load_params
    from pipeline.core.tasks import get_task
    from pipeline.submit import write_submissions

    monkeypatch.setattr("pipeline.submit._git_commit", lambda: "abc1234")
    params = load_params()

    def rewrite(kind: str, **where) -> dict:
        write_source(get_task("competition", params), kind, **where)
        return write_submissions(params)

    return rewrite


def test_index_records_the_data_source_and_commit(project):
    index = read_json("submissions/index.json")
    assert index["source"] == {"source": "kaggle", "competition": "fake-news"}
    assert index["data_sha256"] == {"test.csv": "f" * 64}
    assert index["git_commit"] == "abc1234" and index["folder"] == "fake-news"


def test_sample_predictions_go_elsewhere_and_are_refused_unless_forced(rewritten, capsys):
    index = rewritten("sample")
    assert index["folder"] == "sample" and all(name.startswith("sample/") for name in index["files"])
    assert not ENSEMBLE_CSV.exists()  # no stale fake-news files beside them
    rejected(capsys, "submissions/sample/ensemble.csv", "synthetic sample", "--force")
    code, out, err = submit(capsys, "--dry-run", "--force")
    assert code == 0 and out.startswith("OK: submissions/sample/ensemble.csv"), err


def test_predictions_from_a_local_folder_are_refused_unless_forced(rewritten, capsys, tmp_path):
    index = rewritten("local", local_dir=str(tmp_path / "fakenewsnet_v1_articles"))
    assert index["folder"] == "local-fakenewsnet_v1_articles"
    rejected(capsys, "local folder", "fakenewsnet_v1_articles", "not from Kaggle's 'fake-news'", "--force")
    code, _, err = submit(capsys, "--dry-run", "--force")
    assert code == 0, err


def test_another_competitions_download_is_refused(rewritten, capsys):
    rewritten("kaggle", competition="liar")
    rejected(capsys, "submissions/liar/ensemble.csv", "competition 'liar'", "not of 'fake-news'")


def test_rewriting_keeps_the_kaggle_scores_of_unchanged_files_only(rewritten):
    from pipeline.core.io import write_json

    index = read_json("submissions/index.json")
    scored = [{"ref": 7, "status": "COMPLETE", "public_score": "0.9731", "message": "m"}]
    index["files"]["fake-news/ensemble.csv"]["kaggle"] = scored
    index["files"]["fake-news/word_lr.csv"]["kaggle"] = [{"ref": 6, "status": "COMPLETE"}]
    index["files"]["fake-news/word_lr.csv"]["sha256"] = "0" * 64  # scored a different file
    write_json("submissions/index.json", index)
    rewritten_index = rewritten("kaggle", competition="fake-news")
    assert rewritten_index["files"]["fake-news/ensemble.csv"]["kaggle"] == scored
    assert "kaggle" not in rewritten_index["files"]["fake-news/word_lr.csv"]
    assert read_json("submissions/index.json") == rewritten_index
