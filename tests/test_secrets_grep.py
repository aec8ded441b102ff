"""A planted Kaggle key (and database password) never appears in anything a run produces.

Each test plants a distinctive fake secret, runs what a user would run with
``competition.source: kaggle`` (the CLI, ``dvc repro``), then greps stdout, stderr, the
exception chain and every file the run left behind -- dvc.lock, params.yaml, data/ (source.json
included), metrics/, reports/, .dvc/, the home folder -- for it.

The runs are hermetic: HTTPS_PROXY points at a local port, so nothing reaches the internet
even on a networked machine. A closed port is "offline" (the pipeline's own network check
fails); a stand-in proxy that answers every request with 502 lets the real ``kaggle`` package
authenticate and send its request, as it would behind a broken proxy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import traceback
import types
import zipfile
from pathlib import Path

import pytest
from conftest import KaggleApiStub, make_project_copy, project_env

from tiny_data import write_learnable

pytestmark = pytest.mark.slow  # make test-fast skips these

ROOT = Path(__file__).resolve().parents[1]
KEY = "KGLKEY-5e0c1f7a9d3b"  # distinctive: any hit is a leak
KAGGLE_PARAMS = "competition:\n  source: kaggle\n  name: fake-news\n"


# ------------------------------------------------------------------------------ helpers


def plant(method: str, tmp: Path) -> tuple[dict[str, str], list[Path]]:
    """Credentials holding KEY by ``method``: (environment variables, secret files written)."""

    def secret_file(path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
        return path

    json_text = f'{{"username": "someone", "key": "{KEY}"}}'
    if method == "env":
        return {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": KEY}, []
    if method == "kaggle_config_dir":
        return {"KAGGLE_CONFIG_DIR": str(tmp / "cfg")}, [secret_file(tmp / "cfg/kaggle.json", json_text)]
    if method == "home_kaggle_json":
        return {}, [secret_file(tmp / "home/.kaggle/kaggle.json", json_text)]
    if method == "api_token":
        return {"KAGGLE_API_TOKEN": KEY}, []
    if method == "access_token_file":
        return {}, [secret_file(tmp / "home/.kaggle/access_token", KEY)]
    raise ValueError(method)


def clean_environ(
    home: Path, proxy_port: int, extra: dict[str, str], base: dict[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default os.environ) without the caller's Kaggle variables or proxies, with
    HOME = ``home``, HTTPS_PROXY on ``proxy_port`` and ``extra``."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith("KAGGLE_") and not k.lower().endswith("_proxy")
    }
    if base is None:
        env["PYTHONPATH"] = str(ROOT)
    env.update(
        HOME=str(home), HTTPS_PROXY=f"http://127.0.0.1:{proxy_port}", TF_CPP_MIN_LOG_LEVEL="2", **extra
    )
    return env


def files_holding_key(root: Path) -> list[str]:
    """Every file under ``root`` (hidden ones included) whose bytes contain KEY."""
    return [str(p) for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


class BadGatewayProxy:
    """A local "proxy" that records what it receives and answers 502 to everything."""

    def __init__(self):
        self.received = bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.server.close()


@pytest.fixture
def proxy():
    server = BadGatewayProxy()
    yield server
    server.close()


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text, f"the key leaked into:\n{text}"


# ------------------------------------------------------------------- CLI, every method


@pytest.mark.parametrize(
    "method", ["env", "kaggle_config_dir", "home_kaggle_json", "api_token", "access_token_file"]
)
def test_failed_kaggle_fetch_never_prints_or_stores_the_key(tmp_path, proxy, method):
    env_vars, secrets = plant(method, tmp_path)
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir(exist_ok=True)
    project.mkdir()
    (project / "params.yaml").write_text(KAGGLE_PARAMS)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "fetch", "--task", "competition"],
        cwd=project,
        env=clean_environ(home, proxy.port, env_vars),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "error: cannot reach Kaggle" in result.stderr  # the kaggle package ran to its request
    assert "Traceback" not in result.stderr
    assert_no_key(result.stdout, result.stderr)
    assert KEY.encode() not in proxy.received  # nothing sent in clear to the proxy either
    # Only the planted files hold the key (so the grep does find it): nothing in the project,
    # nothing copied into the home folder by the kaggle package.
    assert sorted(files_holding_key(tmp_path)) == sorted(str(p) for p in secrets)
    assert not (project / "data/raw/competition").exists()


def test_submit_list_offline_never_prints_the_key(tmp_path):
    env_vars, _ = plant("env", tmp_path)
    (tmp_path / "home").mkdir()
    (tmp_path / "params.yaml").write_text(KAGGLE_PARAMS)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "submit", "--list"],
        cwd=tmp_path,
        env=clean_environ(tmp_path / "home", closed_port(), env_vars),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach" in result.stderr and "no network" in result.stderr
    assert_no_key(result.stdout, result.stderr)
    assert files_holding_key(tmp_path) == []


# ------------------------------------------------------------------------------ dvc repro


def test_dvc_repro_with_kaggle_source_stores_no_key(tmp_path):
    # Every method planted at once, each with the same key; offline (closed proxy port).
    project = make_project_copy(tmp_path / "project")
    params = project / "params.yaml"
    text = params.read_text()
    assert "source: sample" in text
    params.write_text(text.replace("source: sample", "source: kaggle", 1))
    env_vars: dict[str, str] = {}
    secrets: list[Path] = []
    for method in ("env", "kaggle_config_dir", "home_kaggle_json", "api_token", "access_token_file"):
        more_env, more_files = plant(method, tmp_path)
        env_vars.update(more_env)
        secrets += more_files
    env = clean_environ(tmp_path / "home", closed_port(), env_vars, base=project_env(project))
    result = subprocess.run(
        ["dvc", "repro", "fetch@competition"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "cannot reach" in output
    assert_no_key(output)
    # dvc.lock, params.yaml, data/, metrics/, reports/, .dvc/, .git/, home: only the planted files.
    assert sorted(files_holding_key(tmp_path)) == sorted(str(p) for p in secrets)


# --------------------------------------------------------------------------- in process


def test_fetch_error_chain_never_holds_the_key(tmp_path, monkeypatch, proxy):
    # The CLI prints only the message; the chained exceptions (kaggle's, requests') are what a
    # debugger or a bug report would show.
    from pipeline.core.errors import SourceUnavailable
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.fetch import fetch

    env_vars, _ = plant("env", tmp_path)
    (tmp_path / "home").mkdir()
    for name in [n for n in os.environ if n.startswith("KAGGLE_") or n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in clean_environ(tmp_path / "home", proxy.port, env_vars).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    params = parse_params({"competition": {"source": "kaggle"}})
    with pytest.raises(SourceUnavailable) as info:
        fetch(get_task("competition", params), params)
    assert "cannot reach Kaggle through the proxy" in str(info.value)  # the kaggle package ran
    chain = "".join(traceback.format_exception(info.value))
    assert info.value.__cause__ is not None  # kaggle's own error is chained
    assert_no_key(chain, repr(info.value.__cause__.args))
    assert files_holding_key(tmp_path) == []


def test_successful_fetch_records_the_method_not_the_key(tmp_path, monkeypatch, caplog):
    # A stand-in for kaggle's KaggleApi: the download succeeds, so source.json is written.
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.fetch import fetch
    from pipeline.sources import kaggle as ks

    class Api(KaggleApiStub):
        def authenticate(self):
            pass

        def competition_download_files(self, competition, path=None, quiet=True, **_):
            with zipfile.ZipFile(Path(path) / f"{competition}.zip", "w") as archive:
                archive.writestr("train.csv", "id,title,author,text,label\n1,a,b,c,0\n2,a,b,c,1\n")
                archive.writestr("test.csv", "id,title,author,text\n3,a,b,c\n")
                archive.writestr("sample_submission.csv", "id,label\n3,0\n")

    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = Api
    for name, mod in (
        ("kaggle", types.ModuleType("kaggle")),
        ("kaggle.api", types.ModuleType("kaggle.api")),
        ("kaggle.api.kaggle_api_extended", module),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(ks, "check_network", lambda *a, **k: None)
    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    params = parse_params({"competition": {"source": "kaggle"}})
    with caplog.at_level("DEBUG"):
        record = fetch(get_task("competition", params), params)
    assert record["available"] is True
    assert record["credentials"] == "KAGGLE_USERNAME/KAGGLE_KEY environment variables"
    assert (tmp_path / "data/raw/competition/source.json").is_file()
    assert files_holding_key(tmp_path) == []
    assert_no_key(caplog.text, repr(record))


# ------------------------------------------------------------------ tune storage password


def test_tune_with_a_password_in_the_storage_url_never_prints_it(tmp_path):
    # The key used as a database password, given on the command line (as the README shows).
    write_learnable(tmp_path)
    features = tmp_path / "data/features/competition"
    features.mkdir(parents=True)
    (features / "sequences.npz").write_bytes(b"stand-in")  # only hashed (study name) before the storage opens
    (tmp_path / "params.yaml").write_text("tune:\n  budget: {n_trials: 1, timeout: 60}\n")
    url = f"postgresql+psycopg://optuna:{KEY}@127.0.0.1:{closed_port()}/studies"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "-v",
            "tune",
            "--task",
            "competition",
            "--model",
            "lstm",
            "--storage",
            url,
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot open Optuna storage postgresql+psycopg://optuna:***@" in result.stderr
    assert_no_key(result.stdout, result.stderr)
    assert files_holding_key(tmp_path) == []
