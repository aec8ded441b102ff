"""Tests for pipeline.sources.kaggle: all offline, no real credentials, never the real ~."""

from __future__ import annotations

import datetime
import enum
import json
import os
import socket
import subprocess
import sys
import time
import types
import warnings
import zipfile
from pathlib import Path

import pytest
import requests
from conftest import KaggleApiStub

from pipeline.core.errors import DataError, SourceUnavailable
from pipeline.sources import kaggle as ks

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "SENTINEL-KEY-5f1d9c7e"
TRAIN, TEST, SUBMIT = "id,text,label\n1,a,0\n", "id,text\n2,b\n", "id,label\n2,0\n"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No Kaggle variable or proxy from the caller's shell; HOME is a fresh folder."""
    for name in list(os.environ):
        if name.startswith("KAGGLE_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def make_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def http_error(status: int, reason: str = "Error") -> requests.exceptions.HTTPError:
    """The exception kaggle 2.2.5 raises (kagglesdk calls response.raise_for_status())."""
    response = requests.Response()
    response.status_code, response.reason = status, reason
    response.url = "https://www.kaggle.com/api/i/competitions.CompetitionApiService/DownloadDataFiles"
    with pytest.raises(requests.exceptions.HTTPError) as info:
        response.raise_for_status()
    return info.value


# --- credentials ---------------------------------------------------------------------------


def test_no_credentials_gives_none(tmp_path):
    assert ks.find_credentials(env={}, home=tmp_path) is None


def test_api_token_env_var_comes_first(tmp_path):
    env = {"KAGGLE_API_TOKEN": SENTINEL, "KAGGLE_USERNAME": "u", "KAGGLE_KEY": SENTINEL}
    assert ks.find_credentials(env=env, home=tmp_path) == "KAGGLE_API_TOKEN environment variable"


def test_access_token_file(tmp_path):
    token = write_secret(tmp_path / ".kaggle" / "access_token", SENTINEL + "\n")
    method = ks.find_credentials(env={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path)
    assert method == f"{token} (access_token file)"


def test_empty_access_token_file_is_ignored(tmp_path):
    write_secret(tmp_path / ".kaggle" / "access_token", "  \n")
    assert ks.find_credentials(env={}, home=tmp_path) is None


def test_username_and_key_env_vars(tmp_path):
    method = ks.find_credentials(env={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": SENTINEL}, home=tmp_path)
    assert method == "KAGGLE_USERNAME/KAGGLE_KEY environment variables"


def test_username_without_key_is_not_enough(tmp_path):
    assert ks.find_credentials(env={"KAGGLE_USERNAME": "u"}, home=tmp_path) is None


def test_kaggle_json_in_home(tmp_path):
    config = write_secret(
        tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "u", "key": SENTINEL})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mode 600: no warning
        assert ks.find_credentials(env={}, home=tmp_path) == str(config)


def test_kaggle_json_in_kaggle_config_dir(tmp_path):
    folder = tmp_path / "cfg"
    write_secret(folder / "kaggle.json", json.dumps({"username": "u", "key": SENTINEL}))
    method = ks.find_credentials(env={"KAGGLE_CONFIG_DIR": str(folder)}, home=tmp_path)
    assert method == f"KAGGLE_CONFIG_DIR={folder} (kaggle.json)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kaggle uses XDG only on Linux")
def test_kaggle_json_in_xdg_config_when_dot_kaggle_is_absent(tmp_path):
    config = write_secret(
        tmp_path / ".config" / "kaggle" / "kaggle.json", json.dumps({"username": "u", "key": "k"})
    )
    assert ks.find_credentials(env={}, home=tmp_path) == str(config)


def test_oauth_credentials_file(tmp_path):
    write_secret(tmp_path / ".kaggle" / "credentials.json", "{}")
    assert "kaggle auth login" in ks.find_credentials(env={}, home=tmp_path)


def test_malformed_kaggle_json_names_the_file_not_the_content(tmp_path):
    config = write_secret(tmp_path / ".kaggle" / "kaggle.json", '{"username": "u", "key": "' + SENTINEL)
    with pytest.raises(SourceUnavailable, match="not valid JSON") as info:
        ks.find_credentials(env={}, home=tmp_path)
    assert str(config) in str(info.value) and SENTINEL not in str(info.value)


def test_kaggle_json_without_key_says_what_is_missing(tmp_path):
    write_secret(tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "u"}))
    with pytest.raises(SourceUnavailable, match="has no 'key'"):
        ks.find_credentials(env={}, home=tmp_path)


def test_world_readable_kaggle_json_warns_to_chmod_600(tmp_path):
    config = write_secret(
        tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "u", "key": "k"}), mode=0o644
    )
    with pytest.warns(UserWarning, match=f"chmod 600 {config}"):
        ks.find_credentials(env={}, home=tmp_path)


def test_missing_credentials_message_lists_the_three_ways(tmp_path):
    with pytest.raises(SourceUnavailable) as info:
        ks.require_credentials(env={}, home=tmp_path)
    message = str(info.value)
    for needle in (
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "~/.kaggle/kaggle.json",
        "KAGGLE_CONFIG_DIR",
        "chmod 600",
        "KAGGLE_API_TOKEN",
        "access_token",
        "https://www.kaggle.com/settings",
    ):
        assert needle in message


# --- zip extraction --------------------------------------------------------------------------


def test_extract_zip_flattens_a_single_top_folder(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"fake-news/train.csv": TRAIN, "fake-news/test.csv": TEST})
    names = ks.extract_zip(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["test.csv", "train.csv"]
    assert names == ["fake-news/train.csv", "fake-news/test.csv"]


def test_extract_zip_keeps_folders_next_to_files(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"train.csv": TRAIN, "extra/notes.txt": "x"})
    ks.extract_zip(archive, tmp_path / "out")
    assert (tmp_path / "out" / "train.csv").is_file() and (tmp_path / "out" / "extra" / "notes.txt").is_file()


@pytest.mark.parametrize("evil", ["../evil.csv", "a/../../evil.csv", "/tmp/evil-kaggle-test.csv"])
def test_extract_zip_refuses_zip_slip(tmp_path, evil):
    archive = make_zip(tmp_path / "c.zip", {"train.csv": TRAIN, evil: "pwned"})
    with pytest.raises(DataError, match="zip slip"):
        ks.extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "evil.csv").exists() and not Path("/tmp/evil-kaggle-test.csv").exists()
    assert not (tmp_path / "out" / "train.csv").exists()  # nothing extracted at all


def test_extract_zip_rejects_a_corrupt_archive(tmp_path):
    (tmp_path / "c.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="not a valid zip"):
        ks.extract_zip(tmp_path / "c.zip", tmp_path / "out")


def test_unpack_renames_submit_csv_to_sample_submission(tmp_path):
    archive = make_zip(
        tmp_path / "fake-news.zip", {"train.csv": TRAIN, "test.csv": TEST, "submit.csv": SUBMIT}
    )
    ks.unpack_competition([archive], tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == list(sorted(ks.REQUIRED_FILES))
    assert (tmp_path / "raw" / "sample_submission.csv").read_text() == SUBMIT


def test_unpack_extracts_zips_inside_the_archive(tmp_path):
    inner = make_zip(tmp_path / "train.csv.zip", {"train.csv": TRAIN})
    archive = make_zip(tmp_path / "c.zip", {"test.csv": TEST, "sample_submission.csv": SUBMIT})
    with zipfile.ZipFile(archive, "a") as z:
        z.write(inner, "train.csv.zip")
    ks.unpack_competition([archive], tmp_path / "raw")
    assert (tmp_path / "raw" / "train.csv").read_text() == TRAIN
    assert not (tmp_path / "raw" / "train.csv.zip").exists()


def test_unpack_without_test_csv_names_it_and_lists_the_archive(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"train.csv": TRAIN, "submit.csv": SUBMIT, "other.txt": ""})
    with pytest.raises(DataError) as info:
        ks.unpack_competition([archive], tmp_path / "raw")
    assert "no test.csv" in str(info.value)
    assert "train.csv, submit.csv, other.txt" in str(info.value)
    assert not (tmp_path / "raw").exists()  # atomic: nothing half-written


# --- error translation ----------------------------------------------------------------------


def test_http_403_means_rules_not_accepted():
    error = ks._translate_kaggle_error(http_error(403, "Forbidden"), "fake-news")
    assert isinstance(error, SourceUnavailable)
    assert "you have not accepted the competition rules" in str(error)
    assert "https://www.kaggle.com/competitions/fake-news/rules" in str(error)
    assert "I Understand and Accept" in str(error)


def test_http_403_from_kaggle_json_body_is_handled_the_same():
    response = requests.Response()
    response.status_code = 403  # kagglesdk: HTTPError(resp["message"], response=http_response)
    exc = requests.exceptions.HTTPError("Permission 'competitions.get' was denied", response=response)
    assert "rules" in str(ks._translate_kaggle_error(exc, "fake-news"))


def test_http_401_means_invalid_credentials():
    error = ks._translate_kaggle_error(http_error(401, "Unauthorized"), "fake-news")
    assert "HTTP 401" in str(error) and "KAGGLE_API_TOKEN" in str(error)


def test_http_404_means_unknown_competition():
    error = ks._translate_kaggle_error(http_error(404, "Not Found"), "fake-newz")
    assert "unknown competition 'fake-newz'" in str(error)


def test_other_http_status_is_reported():
    assert "HTTP 500" in str(ks._translate_kaggle_error(http_error(500), "fake-news"))


def test_system_exit_from_kaggle_means_invalid_credentials():
    error = ks._translate_kaggle_error(SystemExit(1), "fake-news")
    assert isinstance(error, SourceUnavailable) and "credentials" in str(error)


def test_connection_error_means_no_network():
    exc = requests.exceptions.ConnectionError("Max retries exceeded with url: /api/i/...")
    assert "no network" in str(ks._translate_kaggle_error(exc, "fake-news"))


def test_unknown_errors_are_not_translated():
    assert ks._translate_kaggle_error(ValueError("bug"), "fake-news") is None


# --- network --------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_network_fails_fast_on_a_closed_port():
    start = time.monotonic()
    with pytest.raises(SourceUnavailable, match="no network"):
        ks.check_network("127.0.0.1", closed_port(), timeout=3)
    assert time.monotonic() - start < 10


def test_check_network_catches_dns_failure():
    start = time.monotonic()
    with pytest.raises(SourceUnavailable, match="cannot reach nonexistent.invalid:443"):
        ks.check_network("nonexistent.invalid", timeout=3)
    assert time.monotonic() - start < 10


def test_check_network_gives_up_after_timeout_even_if_connect_hangs(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    with pytest.raises(SourceUnavailable, match="no answer within 0.3 s"):
        ks.check_network(timeout=0.3)
    assert time.monotonic() - start < 2


def test_download_without_network_fails_fast_and_never_shows_the_key(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SENTINEL)
    monkeypatch.setattr(ks, "_HOSTS", ("api.kaggle.invalid",))  # offline even on a networked machine
    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as info:
        ks.download_competition("fake-news", tmp_path / "raw")
    assert time.monotonic() - start < 15
    out = capsys.readouterr()
    assert SENTINEL not in str(info.value) + out.out + out.err
    assert not (tmp_path / "raw").exists()


def test_key_never_appears_in_messages(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KAGGLE_KEY", SENTINEL)
    monkeypatch.setenv("KAGGLE_API_TOKEN", SENTINEL)
    messages = [
        str(ks._translate_kaggle_error(exc, "c"))
        for exc in (
            http_error(401),
            http_error(403),
            http_error(404),
            SystemExit(1),
            requests.exceptions.HTTPError(f"bad token {SENTINEL}", response=http_error(400).response),
        )
    ]
    write_secret(tmp_path / ".kaggle" / "kaggle.json", f'{{"username": "u", "key": {SENTINEL}}}')
    with pytest.raises(SourceUnavailable) as info:
        ks.find_credentials(env={}, home=tmp_path)
    messages += [str(info.value), ks.find_credentials(home=tmp_path)]
    out = capsys.readouterr()
    assert all(SENTINEL not in text for text in messages + [out.out, out.err])


# --- the Kaggle calls, against a stand-in for kaggle's KaggleApi ----------------------------


class Status(enum.Enum):  # like kagglesdk's SubmissionStatus
    PENDING = 0
    COMPLETE = 1


class FakeApi(KaggleApiStub):
    """Same method names and signatures as kaggle 2.2.5's KaggleApi."""

    fail: BaseException | None = None
    calls: list = []

    def authenticate(self):
        if isinstance(self.fail, SystemExit):
            raise self.fail

    def competition_download_files(self, competition, path=None, force=False, quiet=True, unzip=False):
        if self.fail is not None:
            raise self.fail
        make_zip(
            Path(path) / f"{competition}.zip",
            {"data/train.csv": TRAIN, "data/test.csv": TEST, "data/submit.csv": SUBMIT},
        )

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        FakeApi.calls.append((file_name, message, competition))
        return types.SimpleNamespace(message="Successfully submitted", ref=1)

    def competition_submissions(
        self, competition, group=None, sort=None, page_number=-1, page_token="", page_size=20
    ):
        row = types.SimpleNamespace(
            date=datetime.datetime(2024, 5, 1, 12, 0),
            description="tfidf+lr",
            status=Status.COMPLETE,
            public_score="0.98123",
            private_score="",
            file_name="submission.csv",
            ref=7,
            error_description="",
        )
        return [row] * 3


@pytest.fixture
def fake_kaggle(monkeypatch):
    """Install FakeApi as kaggle.api.kaggle_api_extended.KaggleApi; skip the network check."""
    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = FakeApi
    for name, mod in (
        ("kaggle", types.ModuleType("kaggle")),
        ("kaggle.api", types.ModuleType("kaggle.api")),
        ("kaggle.api.kaggle_api_extended", module),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(ks, "check_network", lambda *a, **k: None)
    monkeypatch.setattr(FakeApi, "fail", None)
    monkeypatch.setattr(FakeApi, "calls", [])
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SENTINEL)
    return FakeApi


def test_download_competition_returns_the_record_and_the_kaggle_layout(fake_kaggle, tmp_path):
    record = ks.download_competition("fake-news", tmp_path / "raw")
    assert record == {
        "source": "kaggle",
        "competition": "fake-news",
        "credentials": "KAGGLE_USERNAME/KAGGLE_KEY environment variables",
    }
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(ks.REQUIRED_FILES)
    assert not list(tmp_path.glob(".kaggle-*"))  # the download folder is gone


def test_download_translates_kaggle_exit_on_bad_credentials(fake_kaggle, tmp_path):
    fake_kaggle.fail = SystemExit(1)
    with pytest.raises(SourceUnavailable, match="credentials") as info:
        ks.download_competition("fake-news", tmp_path / "raw")
    assert SENTINEL not in str(info.value)


def test_download_translates_403_to_accept_the_rules(fake_kaggle, tmp_path):
    fake_kaggle.fail = http_error(403, "Forbidden")
    with pytest.raises(SourceUnavailable, match="fake-news/rules"):
        ks.download_competition("fake-news", tmp_path / "raw")


def test_submit_passes_file_message_and_competition(fake_kaggle, tmp_path):
    (tmp_path / "s.csv").write_text(SUBMIT)
    ks.submit("fake-news", tmp_path / "s.csv", "tfidf+lr")
    assert fake_kaggle.calls == [(str(tmp_path / "s.csv"), "tfidf+lr", "fake-news")]


def test_submit_reports_a_failed_upload(fake_kaggle, tmp_path, monkeypatch):
    (tmp_path / "s.csv").write_text(SUBMIT)
    failed = types.SimpleNamespace(message="Could not submit to competition")
    monkeypatch.setattr(FakeApi, "competition_submit", lambda self, *a, **k: failed)
    with pytest.raises(SourceUnavailable, match="failed"):
        ks.submit("fake-news", tmp_path / "s.csv", "m")


def test_submit_missing_file_fails_before_any_network(fake_kaggle, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ks.submit("fake-news", tmp_path / "nope.csv", "m")


def test_list_submissions_maps_kaggle_attributes(fake_kaggle):
    rows = ks.list_submissions("fake-news", limit=2)
    assert (
        rows
        == [
            {
                "ref": 7,
                "date": "2024-05-01T12:00:00",
                "description": "tfidf+lr",
                "status": "COMPLETE",
                "public_score": "0.98123",
                "private_score": "",
                "error": "",
                "file_name": "submission.csv",
            }
        ]
        * 2
    )


@pytest.mark.slow
def test_importing_the_module_does_not_import_kaggle():
    code = "import sys, pipeline.sources.kaggle; assert 'kaggle' not in sys.modules, 'imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- pre-flight and HTTP limits --------------------------------------------------------------


def test_preflight_probes_the_hosts_the_client_talks_to(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SENTINEL)
    probed = []
    monkeypatch.setattr(ks, "check_network", lambda host, port, *a, **k: probed.append((host, port)))
    ks._preflight()
    assert probed == [("api.kaggle.com", 443), ("storage.googleapis.com", 443)]


def test_preflight_behind_a_proxy_probes_the_proxy(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SENTINEL)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3128")
    probed = []
    monkeypatch.setattr(ks, "check_network", lambda host, port, *a, **k: probed.append((host, port)))
    ks._preflight()
    assert probed == [("proxy.example", 3128)]


def test_http_limits_default_and_from_the_environment():
    from pipeline.sources._kaggle_http import Limits, limits_from_env

    assert limits_from_env({}) == Limits(connect=10.0, read=60.0, retries=3, backoff=2.0, deadline=1800.0)
    env = {
        "PIPELINE_KAGGLE_CONNECT_TIMEOUT": "2.5",
        "PIPELINE_KAGGLE_READ_TIMEOUT": "30",
        "PIPELINE_KAGGLE_RETRIES": "0",
        "PIPELINE_KAGGLE_BACKOFF": "0",
        "PIPELINE_KAGGLE_DEADLINE": "90",
    }
    assert limits_from_env(env) == Limits(connect=2.5, read=30.0, retries=0, backoff=0.0, deadline=90.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("PIPELINE_KAGGLE_READ_TIMEOUT", "0"),
        ("PIPELINE_KAGGLE_CONNECT_TIMEOUT", "-1"),
        ("PIPELINE_KAGGLE_RETRIES", "2.5"),
        ("PIPELINE_KAGGLE_BACKOFF", "x"),
        ("PIPELINE_KAGGLE_DEADLINE", "0"),
        ("PIPELINE_KAGGLE_DEADLINE", "an hour"),
    ],
)
def test_http_limits_reject_a_bad_value_naming_the_variable(name, value):
    from pipeline.core.errors import ParamsError
    from pipeline.sources._kaggle_http import limits_from_env

    with pytest.raises(ParamsError, match=f"{name}='{value}'"):
        limits_from_env({name: value})


def test_retry_after_accepts_seconds_and_http_dates():
    from pipeline.sources._kaggle_http import retry_after_seconds

    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_tls_failure_is_not_reported_as_no_network():
    exc = requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='api.kaggle.com', port=443): Max retries exceeded (Caused by "
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: self-signed certificate in certificate chain (_ssl.c:1006)')))"
    )
    message = str(ks._translate_kaggle_error(exc, "fake-news"))
    assert "certificate verify failed: self-signed certificate in certificate chain" in message
    assert "REQUESTS_CA_BUNDLE" in message and "no network" not in message
