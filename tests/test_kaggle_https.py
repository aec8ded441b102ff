"""The real ``kaggle`` client, unmodified, end to end over HTTPS against a fake Kaggle API.

Each test runs the CLI (``python -m pipeline fetch|submit``) in a fresh project folder with
``HTTPS_PROXY`` pointing at a loopback proxy that tunnels to :class:`kaggle_https.FakeKaggle`
and ``REQUESTS_CA_BUNDLE`` at a CA made for the test; then checks the exit status, the
message, what was left on disk, and that the key appears in nothing printed or written
(nor in clear on the wire). Every run is bounded by a subprocess timeout and short
``PIPELINE_KAGGLE_*`` timeouts, so no test can hang.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_project_copy, project_env

from kaggle_https import FakeKaggle, Proxy, make_pki, zip_bytes
from pipeline.sources.sample import write_sample

pytestmark = pytest.mark.slow  # make test-fast skips these

ROOT = Path(__file__).resolve().parents[1]
USER, KEY = "someone", "KGLKEY-https-7c2e9b41d0"
PARAMS = "competition:\n  source: kaggle\n  name: fake-news\n"
FAST = {
    "PIPELINE_KAGGLE_CONNECT_TIMEOUT": "3",
    "PIPELINE_KAGGLE_READ_TIMEOUT": "1",
    "PIPELINE_KAGGLE_RETRIES": "1",
    "PIPELINE_KAGGLE_BACKOFF": "0.1",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def competition_files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, n_train=60, n_test=20)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def kaggle(pki, competition_files):
    fake = FakeKaggle(pki, zip_bytes({f"fake-news/{k}": v for k, v in competition_files.items()}))
    proxy = Proxy(fake.port)
    fake.proxy = proxy
    yield fake
    proxy.close()
    fake.close()


@pytest.fixture
def project(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "project" / "params.yaml").write_text(PARAMS)
    return tmp_path / "project"


def kaggle_env(
    project: Path, kaggle: FakeKaggle, pki, base: dict | None = None, **env_overrides: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("KAGGLE_", "PIPELINE_KAGGLE_")) and not k.lower().endswith("_proxy")
    }
    env.setdefault("PYTHONPATH", str(ROOT))
    env.update(
        HOME=str(project.parent / "home"),
        TF_CPP_MIN_LOG_LEVEL="2",
        HTTPS_PROXY=f"http://127.0.0.1:{kaggle.proxy.port}",
        REQUESTS_CA_BUNDLE=str(pki["ca"]),
        KAGGLE_USERNAME=USER,
        KAGGLE_KEY=KEY,
        **FAST,
    )
    env.update(env_overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def run(
    project: Path, kaggle: FakeKaggle, pki, *args: str, timeout: float = 90, **env_overrides: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=project,
        env=kaggle_env(project, kaggle, pki, **env_overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_no_leak(result: subprocess.CompletedProcess, project: Path, kaggle: FakeKaggle) -> None:
    for text in (result.stdout, result.stderr):
        assert KEY not in text, f"the key leaked:\n{text}"
    holding = [p for p in project.parent.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert holding == []
    assert KEY.encode() not in kaggle.proxy.received  # never in clear on the wire


def assert_nothing_left(project: Path) -> None:
    """A failed fetch leaves no data and no temporary folder behind."""
    left = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert left == ["params.yaml"], left
    assert not [p for p in project.rglob("*.tmp")]


def fetch(project, kaggle, pki, **env):
    return run(project, kaggle, pki, "fetch", "--task", "competition", **env)


def write_raw(project: Path, files: dict[str, bytes]) -> None:
    raw = project / "data/raw/competition"
    raw.mkdir(parents=True)
    for name, data in files.items():
        (raw / name).write_bytes(data)


# --------------------------------------------------------------------------------- fetch


@pytest.mark.parametrize("credentials", ["key", "token"])
def test_fetch_downloads_unpacks_and_prepare_reads_it(project, kaggle, pki, competition_files, credentials):
    env = (
        {"KAGGLE_USERNAME": "<unset>", "KAGGLE_KEY": "<unset>", "KAGGLE_API_TOKEN": KEY}
        if credentials == "token"
        else {}
    )
    result = fetch(project, kaggle, pki, **env)
    assert result.returncode == 0, result.stderr
    raw = project / "data/raw/competition"
    for name, data in competition_files.items():
        assert (raw / name).read_bytes() == data
    calls = [c for c in kaggle.calls if c[1] != "IntrospectToken"]  # the token is checked first
    assert [c[:2] for c in calls] == [("POST", "DownloadDataFiles"), ("GET", "storage")]
    assert calls[0][2].startswith("Bearer " if credentials == "token" else "Basic ")
    assert all(
        line.startswith(("CONNECT api.kaggle.com:443", "CONNECT storage.googleapis.com:443"))
        for line in kaggle.proxy.connects
    )
    assert not list(project.rglob("*.tmp")) and not list(project.rglob("*.zip"))
    assert_no_leak(result, project, kaggle)
    prepared = run(project, kaggle, pki, "prepare", "--task", "competition")
    assert prepared.returncode == 0, prepared.stderr


@pytest.mark.parametrize(
    "status, needle",
    [
        (401, "Kaggle rejected the credentials (HTTP 401)"),
        (403, "you have not accepted the competition rules"),
        (404, "unknown competition 'fake-news' (HTTP 404)"),
    ],
)
def test_fetch_http_errors_say_what_to_do(project, kaggle, pki, status, needle):
    kaggle.plan["DownloadDataFiles"] = [status]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert kaggle.count("DownloadDataFiles") == 1  # a client error is not retried
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


def test_fetch_retries_429_after_the_time_kaggle_asks(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = [(429, {"Retry-After": "1"}), "ok"]
    start = time.monotonic()
    result = fetch(project, kaggle, pki)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start >= 1
    assert kaggle.count("DownloadDataFiles") == 2
    assert "HTTP 429 from api.kaggle.com; retry 1 of 1 in 1.0 s" in result.stderr


def test_fetch_gives_up_on_429_after_the_retries(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = [(429, {"Retry-After": "0"})]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert "Kaggle is limiting the request rate (HTTP 429, 2 attempts)" in result.stderr
    assert kaggle.count("DownloadDataFiles") == 2
    assert_nothing_left(project)


def test_fetch_does_not_wait_hours_for_a_long_retry_after(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = [(429, {"Retry-After": "3600"})]
    start = time.monotonic()
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2 and time.monotonic() - start < 30
    assert "it asks to wait 3600 s" in result.stderr
    assert kaggle.count("DownloadDataFiles") == 1


def test_fetch_retries_a_server_error_then_succeeds(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = [500, "ok"]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 0, result.stderr
    assert kaggle.count("DownloadDataFiles") == 2


def test_fetch_reports_a_persistent_server_error(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = [500]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert "Kaggle answered HTTP 500 (a server error, 2 attempts)" in result.stderr
    assert "try again later" in result.stderr
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


@pytest.mark.parametrize("status", [403, 404])
def test_storage_errors_are_not_taken_for_kaggle_api_errors(project, kaggle, pki, status):
    kaggle.plan["storage"] = [status]  # e.g. an expired signed link
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert f"the storage server storage.googleapis.com answered HTTP {status}" in result.stderr
    assert "rules" not in result.stderr and "unknown competition" not in result.stderr
    assert_nothing_left(project)


def test_fetch_reports_a_connection_closed_without_an_answer(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = ["reset"]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert "the connection to api.kaggle.com was closed or reset without an answer" in result.stderr
    assert "2 attempts" in result.stderr and "no network" not in result.stderr


def test_fetch_retries_a_reset_connection(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = ["reset", "ok"]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 0, result.stderr
    assert kaggle.count("DownloadDataFiles") == 2


def test_fetch_from_a_server_that_never_answers_times_out(project, kaggle, pki):
    kaggle.plan["DownloadDataFiles"] = ["hang"]
    start = time.monotonic()
    result = fetch(project, kaggle, pki)
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    assert (
        "api.kaggle.com accepted the connection but sent nothing for 1 s (read timeout, "
        "2 attempts)" in result.stderr
    )
    assert "PIPELINE_KAGGLE_READ_TIMEOUT" in result.stderr
    assert elapsed < 30
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


@pytest.mark.parametrize("where", ["tls", "proxy"])
def test_fetch_through_a_hanging_handshake_or_proxy_times_out(project, kaggle, pki, where):
    if where == "tls":
        kaggle.tls_hang = True
    else:
        kaggle.proxy.hang = True
    start = time.monotonic()
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - start < 40
    assert (
        "no answer from api.kaggle.com while opening the connection (proxy CONNECT or TLS "
        "handshake) within 3 s, 2 attempts" in result.stderr
    )
    assert_nothing_left(project)


def test_fetch_from_storage_that_stalls_mid_download_times_out(project, kaggle, pki):
    kaggle.plan["storage"] = ["stall"]
    start = time.monotonic()
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2, result.stderr
    assert "storage.googleapis.com" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - start < 40
    assert_nothing_left(project)


def test_download_trickling_inside_the_read_timeout_is_cut_at_the_deadline(project, kaggle, pki):
    kaggle.plan["storage"] = ["trickle"]  # a byte every 0.2 s: the 1 s read timeout never trips
    start = time.monotonic()
    result = fetch(project, kaggle, pki, PIPELINE_KAGGLE_DEADLINE="3")
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    assert 3 <= elapsed < 20
    assert (
        "the download of 'fake-news' (storage.googleapis.com) was still running after 3 s, the "
        "total time allowed (PIPELINE_KAGGLE_DEADLINE)" in result.stderr
    )
    assert "nothing was kept" in result.stderr and "raise PIPELINE_KAGGLE_DEADLINE" in result.stderr
    assert "Traceback" not in result.stderr
    assert kaggle.count("storage") == 1  # not resumed after the deadline
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


def test_truncated_download_is_resumed(project, kaggle, pki, competition_files):
    kaggle.plan["storage"] = ["truncate", "ok"]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 0, result.stderr
    assert (project / "data/raw/competition/train.csv").read_bytes() == competition_files["train.csv"]


def test_truncated_download_is_reported_as_cut_off_not_as_a_write_failure(project, kaggle, pki):
    kaggle.plan["storage"] = ["truncate"]
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2, result.stderr
    assert "the download from storage.googleapis.com was cut off before its end" in result.stderr
    assert "cannot write" not in result.stderr and "Partial file saved" not in result.stdout
    assert ".tmp" not in result.stdout + result.stderr  # never names a deleted temp file
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


def test_corrupt_zip_is_named_without_a_temp_path(project, kaggle, pki):
    kaggle.archive = b"PK\x03\x04" + b"\x00garbage" * 50
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert "the archive Kaggle sent for 'fake-news' is not a valid zip archive" in result.stderr
    assert ".tmp" not in result.stderr and "delete it" not in result.stderr
    assert_nothing_left(project)


def test_zip_without_test_csv_lists_what_it_held(project, kaggle, pki, competition_files):
    kaggle.archive = zip_bytes(
        {
            "train.csv": competition_files["train.csv"],
            "sample_submission.csv": competition_files["sample_submission.csv"],
        }
    )
    result = fetch(project, kaggle, pki)
    assert result.returncode == 2
    assert (
        "the Kaggle archive has no test.csv (it contained: train.csv, sample_submission.csv)" in result.stderr
    )
    assert_nothing_left(project)


def test_untrusted_certificate_is_a_tls_message_not_no_network(project, kaggle, pki, tmp_path):
    other = make_pki(tmp_path / "other")  # a CA that did not sign the server's certificate
    result = fetch(project, kaggle, pki, REQUESTS_CA_BUNDLE=str(other["ca"]))
    assert result.returncode == 2
    assert "the TLS connection to api.kaggle.com failed" in result.stderr
    assert "certificate verify failed" in result.stderr and "REQUESTS_CA_BUNDLE" in result.stderr
    assert "no network" not in result.stderr
    assert kaggle.calls == []  # nothing was sent
    assert_nothing_left(project)
    assert_no_leak(result, project, kaggle)


def test_a_bad_timeout_variable_is_named(project, kaggle, pki):
    result = fetch(project, kaggle, pki, PIPELINE_KAGGLE_READ_TIMEOUT="soon")
    assert result.returncode == 2
    assert "PIPELINE_KAGGLE_READ_TIMEOUT='soon' must be a number of seconds > 0" in result.stderr
    assert kaggle.calls == []


def test_failed_refetch_under_dvc_repro_keeps_the_data_fetched_earlier(
    tmp_path, kaggle, pki, competition_files
):
    project = make_project_copy(tmp_path / "project")
    (tmp_path / "home").mkdir()
    (project / "params.yaml").write_text(
        (project / "params.yaml").read_text().replace("source: sample", "source: kaggle")
    )
    env = kaggle_env(project, kaggle, pki, base=project_env(project))

    def repro():
        return subprocess.run(
            ["dvc", "repro", "fetch@competition"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    first = repro()
    assert first.returncode == 0, first.stderr + first.stdout
    train = project / "data/raw/competition/train.csv"
    assert train.read_bytes() == competition_files["train.csv"]
    kaggle.plan["DownloadDataFiles"] = [500]  # Kaggle is down when the stage reruns
    (project / "params.yaml").write_text(
        (project / "params.yaml").read_text().replace("seed: ", "seed: 1", 1)
    )
    second = repro()
    assert second.returncode != 0
    assert "Kaggle answered HTTP 500" in second.stdout + second.stderr
    assert train.read_bytes() == competition_files["train.csv"]  # DVC did not delete it
    assert sorted(p.name for p in train.parent.iterdir()) == sorted([*competition_files, "source.json"])


# -------------------------------------------------------------------------------- submit


@pytest.fixture
def submission(project, competition_files) -> Path:
    write_raw(project, competition_files)
    path = project / "mine.csv"
    path.write_bytes(competition_files["sample_submission.csv"])
    return path


def submit(project, kaggle, pki, file: Path, **env):
    return run(project, kaggle, pki, "submit", "--file", str(file), "--force", "--message", "m1", **env)


def test_submit_uploads_the_file_and_creates_one_submission(project, kaggle, pki, submission):
    result = submit(project, kaggle, pki, submission)
    assert result.returncode == 0, result.stderr
    assert [c[:2] for c in kaggle.calls] == [
        ("POST", "StartSubmissionUpload"),
        ("PUT", "upload"),
        ("POST", "CreateSubmission"),
    ]
    assert kaggle.calls[1][3] == submission.read_bytes()
    assert b'"submissionDescription": "m1"' in kaggle.calls[2][3]
    assert "submitted" in result.stdout
    assert_no_leak(result, project, kaggle)


@pytest.mark.parametrize("upload", [400, "hang"], ids=["rejected", "never answers"])
def test_submit_failed_upload_creates_no_submission(project, kaggle, pki, submission, upload):
    kaggle.plan["upload"] = [upload]  # kaggle's own Retry(total=10) made "hang" last > 90 s
    start = time.monotonic()
    result = submit(project, kaggle, pki, submission)
    assert result.returncode == 2 and time.monotonic() - start < 60
    assert f"uploading {submission} to Kaggle competition 'fake-news' failed" in result.stderr
    assert kaggle.count("CreateSubmission") == 0
    assert_no_leak(result, project, kaggle)


def test_submit_never_sends_a_submission_twice(project, kaggle, pki, submission):
    kaggle.plan["CreateSubmission"] = ["hang"]
    start = time.monotonic()
    result = submit(project, kaggle, pki, submission)
    assert result.returncode == 2 and time.monotonic() - start < 30
    assert kaggle.count("CreateSubmission") == 1  # a read timeout there is not retried
    assert "the submission may have been recorded" in result.stderr
    assert "submit --list" in result.stderr


def test_submit_does_not_repeat_a_create_that_failed_on_the_server(project, kaggle, pki, submission):
    kaggle.plan["CreateSubmission"] = [503]
    result = submit(project, kaggle, pki, submission)
    assert result.returncode == 2
    assert kaggle.count("CreateSubmission") == 1  # it may have been recorded: not sent again
    assert "HTTP 503" in result.stderr and "the submission may have been recorded" in result.stderr


def test_submit_retries_a_rate_limited_create(project, kaggle, pki, submission):
    kaggle.plan["CreateSubmission"] = [(429, {"Retry-After": "0"}), "ok"]
    result = submit(project, kaggle, pki, submission)
    assert result.returncode == 0, result.stderr
    assert kaggle.count("CreateSubmission") == 2  # 429: Kaggle did not take the first one


def test_submit_list_prints_the_submissions(project, kaggle, pki):
    result = run(project, kaggle, pki, "submit", "--list")
    assert result.returncode == 0, result.stderr
    assert "COMPLETE" in result.stdout and "0.98123" in result.stdout and "tfidf+lr" in result.stdout
    assert [c[:2] for c in kaggle.calls] == [("POST", "ListSubmissions")]
    assert_no_leak(result, project, kaggle)


def test_submit_list_on_a_hanging_server_times_out(project, kaggle, pki):
    kaggle.plan["ListSubmissions"] = ["hang"]
    start = time.monotonic()
    result = run(project, kaggle, pki, "submit", "--list")
    assert result.returncode == 2 and time.monotonic() - start < 30
    assert "sent nothing for 1 s" in result.stderr
    assert_no_leak(result, project, kaggle)


# ------------------------------------------------------------------------- submit --wait


@pytest.fixture(scope="module")
def scored_template(tmp_path_factory):
    from fakepreds import make_submission_project

    return make_submission_project(tmp_path_factory.mktemp("scored"))


@pytest.fixture
def pipeline_project(scored_template, tmp_path) -> Path:
    """A project after `dvc repro` on the fake-news data: submissions/ and its index.json."""
    shutil.copytree(scored_template, tmp_path / "project")
    (tmp_path / "home").mkdir()
    return tmp_path / "project"


def submit_and_wait(project, kaggle, pki, timeout: float, every: float = 0.2):
    args = ("submit", "--wait", "--wait-timeout", str(timeout), "--poll-every", str(every))
    return run(project, kaggle, pki, *args)


def ensemble_entry(project: Path) -> dict:
    return json.loads((project / "submissions/index.json").read_text())["files"]["fake-news/ensemble.csv"]


def test_submit_wait_polls_until_scored_and_records_the_score(pipeline_project, kaggle, pki):
    kaggle.submission_states = [{"status": "PENDING", "publicScore": ""}] * 2 + [
        {"status": "COMPLETE", "publicScore": "0.97312"}
    ]
    cv = ensemble_entry(pipeline_project)["cv_accuracy"]
    result = submit_and_wait(pipeline_project, kaggle, pki, timeout=30)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("submission 7: PENDING;")]
    assert len(progress) == 2 and "s elapsed, at most" in progress[0], result.stdout
    assert f"public score 0.97312 (CV accuracy {cv:.4f})" in result.stdout
    assert kaggle.count("CreateSubmission") == 1 and kaggle.count("ListSubmissions") == 3
    [record] = ensemble_entry(pipeline_project)["kaggle"]
    assert record["ref"] == 7 and record["status"] == "COMPLETE" and record["public_score"] == "0.97312"
    listed = run(pipeline_project, kaggle, pki, "submit", "--list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "0.97312" in line)
    assert f"{cv:.4f}  0.97312" in row  # CV beside the public score
    assert_no_leak(result, pipeline_project, kaggle)


def test_submit_wait_reports_a_scoring_error(pipeline_project, kaggle, pki):
    kaggle.submission_states = [
        {"status": "ERROR", "publicScore": "", "errorDescription": "Submission must have 5200 rows"}
    ]
    result = submit_and_wait(pipeline_project, kaggle, pki, timeout=30)
    assert result.returncode == 2
    assert "Kaggle could not score submission 7 to 'fake-news': Submission must have 5200 rows" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    [record] = ensemble_entry(pipeline_project)["kaggle"]
    assert record["status"] == "ERROR" and record["error"] == "Submission must have 5200 rows"


def test_submit_wait_gives_up_after_the_timeout(pipeline_project, kaggle, pki):
    kaggle.submission_states = [{"status": "PENDING", "publicScore": ""}]
    start = time.monotonic()
    result = submit_and_wait(pipeline_project, kaggle, pki, timeout=1.5, every=0.3)
    elapsed = time.monotonic() - start
    assert result.returncode == 2 and elapsed < 30
    assert "Kaggle has not scored submission 7 to 'fake-news' within 1.5 s (status: PENDING)" in (
        result.stderr
    )
    assert "submit --list" in result.stderr
    assert kaggle.count("CreateSubmission") == 1  # sent once, never again
    assert 2 <= kaggle.count("ListSubmissions") <= 8
    [record] = ensemble_entry(pipeline_project)["kaggle"]
    assert record["ref"] == 7 and record["status"] == "PENDING"
