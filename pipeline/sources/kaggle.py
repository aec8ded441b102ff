"""Kaggle competitions as a data source: credentials, download, submit, list submissions.

The ``kaggle`` package is imported lazily, inside the functions that talk to Kaggle:
importing it (kaggle 2.2.5) authenticates at import time, prints help when there are no
credentials, creates ``~/.kaggle`` and, with ``KAGGLE_API_TOKEN``, calls the network.
Every call checks credentials and the network first (the hosts the client talks to, or the
proxy), so a missing key or an offline machine fails in seconds with a
:class:`SourceUnavailable` saying what to do. Every HTTP request then has a connect and a
read timeout and bounded retries (:mod:`._kaggle_http`). No message ever contains the key
or the token, nor names a temporary file.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.core.errors import DataError, PipelineError, SourceUnavailable
from pipeline.core.io import atomic_path
from pipeline.core.secrets import mask_url

from ._kaggle_http import Limits, Trace, limited_http, limits_from_env, proxy_refused

log = logging.getLogger(__name__)

SETTINGS_URL = "https://www.kaggle.com/settings"
REQUIRED_FILES = ("train.csv", "test.csv", "sample_submission.csv")
# The client sends its API calls to api.kaggle.com; data downloads are redirected to, and
# submissions uploaded to, Google Cloud Storage.
_HOSTS, _PORT = ("api.kaggle.com", "storage.googleapis.com"), 443
_UPLOAD_FAILED = "Could not submit to competition"  # what competition_submit returns on failure
_HOW_TO = (
    f"create an API token at {SETTINGS_URL} (section 'API'), then use one of:\n"
    "  1. export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>\n"
    "  2. save kaggle.json as ~/.kaggle/kaggle.json (or in the folder named by "
    "KAGGLE_CONFIG_DIR), then: chmod 600 ~/.kaggle/kaggle.json\n"
    "  3. export KAGGLE_API_TOKEN=<token>, or save the token alone in ~/.kaggle/access_token"
)


def find_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """Describe which method supplies Kaggle credentials (never the secret), or return None.

    Same order as kaggle 2.2.5's ``KaggleApi.authenticate()``: ``KAGGLE_API_TOKEN``,
    ``~/.kaggle/access_token[.txt]``, ``KAGGLE_USERNAME``/``KAGGLE_KEY``, ``kaggle.json`` (in
    ``$KAGGLE_CONFIG_DIR``, else ``~/.kaggle``, else on Linux ``$XDG_CONFIG_HOME/kaggle``),
    ``~/.kaggle/credentials.json`` (``kaggle auth login``). A malformed ``kaggle.json``
    raises :class:`SourceUnavailable`; a secret file readable by others warns.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN environment variable"
    for token in (home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"):
        if token.is_file() and _read(token).strip():
            warn_if_world_readable(token)
            return f"{token} (access_token file)"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY environment variables"
    config = _config_path(env, home)
    if config.is_file():
        _check_config(config)
        warn_if_world_readable(config)
        config_dir = env.get("KAGGLE_CONFIG_DIR")
        return f"KAGGLE_CONFIG_DIR={config_dir} (kaggle.json)" if config_dir else str(config)
    oauth = home / ".kaggle" / "credentials.json"
    return f"{oauth} (kaggle auth login)" if oauth.is_file() else None


def require_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """Like :func:`find_credentials`, but raise :class:`SourceUnavailable` when none is found."""
    method = find_credentials(env, home)
    if method is None:
        raise SourceUnavailable("no Kaggle credentials found", fix=_HOW_TO)
    return method


def warn_if_world_readable(path: Path) -> None:
    """Warn (``warnings.warn``) when the secret file ``path`` is readable by group or others."""
    if os.name != "nt" and Path(path).stat().st_mode & 0o077:
        warnings.warn(f"{path} is readable by other users: run `chmod 600 {path}`", stacklevel=2)


def check_network(host: str = _HOSTS[0], port: int = _PORT, timeout: float = 5.0, via: str = "") -> None:
    """Open and close a TCP connection to ``host:port``; raise :class:`SourceUnavailable` if
    it fails or takes more than ``timeout`` seconds, DNS lookup included. ``via="proxy"``
    says in the message that ``host`` is the proxy."""
    outcome: list[OSError | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)  # also bounds a hanging DNS lookup
    thread.start()
    thread.join(timeout)
    if outcome and outcome[0] is None:
        return
    error = outcome[0] if outcome else None
    if error is None:
        reason = f"no answer within {timeout:g} s"
    elif isinstance(error, socket.gaierror):
        reason = f"DNS lookup failed: {error.strerror or error}"
    else:
        reason = error.strerror or str(error) or type(error).__name__
    what = f"the proxy {host}:{port} (HTTPS_PROXY)" if via == "proxy" else f"{host}:{port}"
    raise SourceUnavailable(
        f"cannot reach {what} ({reason}): no network?",
        fix="connect to the internet (behind a proxy: export HTTPS_PROXY), "
        "or set competition.source to 'local' with the files downloaded by hand",
    )


def extract_zip(zip_path: Path, dest: Path, label: str | None = None) -> list[str]:
    """Extract ``zip_path`` into the folder ``dest``; return the archive's member names.

    Refuses (:class:`DataError`, before extracting anything) a member that would land
    outside ``dest`` ("zip slip"). When every member sits in one top folder, that folder is
    flattened away. ``__MACOSX/`` entries are skipped. Messages call the archive ``label``
    (default: its path), so a temporary download is never named.
    """
    zip_path, root = Path(zip_path), Path(dest).resolve()
    label = label or str(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        fix = (
            "delete it and download again"
            if label == str(zip_path)
            else "nothing was kept; run the fetch again"
        )
        raise DataError(
            f"{label} is not a valid zip archive (corrupt or truncated download?): {fix}"
        ) from None
    with archive:
        members = [m for m in archive.infolist() if not m.filename.startswith("__MACOSX/")]
        names = [m.filename.replace("\\", "/") for m in members]
        for name in names:
            target = root.joinpath(name).resolve()
            if target != root and root not in target.parents:
                raise DataError(
                    f"{label}: refusing to extract {name!r}: it would be written "
                    f"outside {dest} (zip slip). The archive is not the expected one."
                )
        prefix = _single_top_folder(names)
        try:
            for member, name in zip(members, names):
                target = root / name[len(prefix) :]
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise DataError(
                f"{label}: member {name!r} is corrupt ({exc}): the archive is damaged; download it again"
            ) from None
    return names


def unpack_competition(archives: list[Path], dest: Path, label: str | None = None) -> list[str]:
    """Extract ``archives`` (and zips inside them) into ``dest`` atomically; return member names.

    ``submit.csv`` becomes ``sample_submission.csv`` when the latter is missing (Kaggle's
    fake-news ships it so). A missing required file raises :class:`DataError` listing what
    the archives held, and leaves ``dest`` as it was. ``label`` names the archives in messages.
    """
    contents: list[str] = []
    with atomic_path(dest) as out:
        out.mkdir()
        for archive in archives:
            contents += extract_zip(archive, out, label)
        for inner in sorted(out.glob("*.zip")):
            contents += extract_zip(inner, out, f"{label or archives[0]}: {inner.name}")
            inner.unlink()
        if (out / "submit.csv").is_file() and not (out / "sample_submission.csv").exists():
            (out / "submit.csv").rename(out / "sample_submission.csv")
        missing = [name for name in REQUIRED_FILES if not (out / name).is_file()]
        if missing:
            raise DataError(
                f"the Kaggle archive has no {', '.join(missing)} (it contained: "
                f"{', '.join(contents) or 'nothing'}); this pipeline needs a "
                f"competition with {', '.join(REQUIRED_FILES)}: check competition.name"
            )
    return contents


def download_competition(competition: str, dest: Path) -> dict:
    """Download ``competition`` into ``dest`` (train.csv, test.csv, sample_submission.csv).

    The archive is downloaded into a temporary folder beside ``dest`` (``.kaggle-download-*.tmp``,
    git-ignored), with the timeouts and retries of :func:`._kaggle_http.limits_from_env`, then
    unpacked atomically. Returns ``{"source": "kaggle", "competition": ..., "credentials": ...}``.
    """
    limits = limits_from_env()
    method = _preflight(limits)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info(
        "downloading %r from Kaggle (timeouts: connect %g s, read %g s, all in %g s; up to %d retries)",
        competition,
        limits.connect,
        limits.read,
        limits.deadline,
        limits.retries,
    )
    with tempfile.TemporaryDirectory(prefix=".kaggle-download-", suffix=".tmp", dir=dest.parent) as tmp:

        def download(api):
            # kaggle's public call does not expose download_file's retry count or timeout
            api.download_file = functools.partial(
                type(api).download_file, api, max_retries=limits.retries, timeout=limits.read
            )
            api.competition_download_files(competition, path=tmp, quiet=True)

        _call(competition, download, limits, "download")
        archives = sorted(Path(tmp).glob("*.zip"))
        if not archives:
            got = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise DataError(f"Kaggle sent no zip archive for {competition!r} (got: {got})")
        unpack_competition(archives, dest, label=f"the archive Kaggle sent for {competition!r}")
    return {"source": "kaggle", "competition": competition, "credentials": method}


def submit(competition: str, file: Path, message: str) -> int | None:
    """Upload the submission ``file`` to ``competition`` with the description ``message``;
    return the submission's ref (Kaggle's number for it), None if Kaggle sent none."""
    file = Path(file)
    if not file.is_file():
        raise DataError(f"submission file {file} does not exist: build it first")
    limits = limits_from_env()
    _preflight(limits)
    response = _call(
        competition,
        lambda api: api.competition_submit(str(file), message, competition, quiet=True),
        limits,
        "submit",
    )
    if getattr(response, "message", "") == _UPLOAD_FAILED:
        raise SourceUnavailable(
            f"uploading {file} to Kaggle competition {competition!r} failed: "
            "the storage server refused, dropped or did not answer the "
            "upload; nothing was submitted",
            fix="submit again later, or upload the file at https://www."
            f"kaggle.com/competitions/{competition}/submissions",
        )
    return int(getattr(response, "ref", 0) or 0) or None


def list_submissions(competition: str, limit: int = 10) -> list[dict]:
    """Return your latest ``limit`` submissions to ``competition``, newest first.

    Keys: ref, date (ISO string), description, status ("PENDING", "COMPLETE" or "ERROR"),
    public_score, private_score (strings, as Kaggle sends them), error (why scoring failed)
    and file_name.
    """
    limits = limits_from_env()
    _preflight(limits, hosts=_HOSTS[:1])
    rows = _call(
        competition, lambda api: api.competition_submissions(competition, page_size=limit), limits, "list"
    )
    return [
        {
            "ref": row.ref,
            "date": row.date.isoformat() if hasattr(row.date, "isoformat") else row.date,
            "description": row.description,
            "status": getattr(row.status, "name", row.status),
            "public_score": row.public_score,
            "private_score": row.private_score,
            "error": row.error_description,
            "file_name": row.file_name,
        }
        for row in (rows or [])[:limit]
        if row is not None
    ]


class NotScored(PipelineError):
    """Kaggle did not score a submission: it failed (``status`` ERROR) or the wait ran out."""

    def __init__(self, message: str, row: dict | None):
        super().__init__(message)
        self.row = row


def wait_for_score(
    competition: str,
    ref: int | None,
    description: str,
    timeout: float,
    every: float,
    progress: Callable[[str], None] = print,
) -> dict:
    """Poll the submissions list until submission ``ref`` (else the newest one described
    ``description``) is scored; return its row (:func:`list_submissions`' keys).

    At most ``timeout`` seconds in all, one listing every ``every`` seconds, a progress line
    after each. Raises :class:`NotScored` when Kaggle reports ERROR or time runs out.
    """
    started = time.monotonic()
    page = f"https://www.kaggle.com/competitions/{competition}/submissions"
    name = f"submission {ref}" if ref else f"the submission {description!r}"
    while True:
        rows = list_submissions(competition, limit=20)
        row = next(
            (r for r in rows if (r["ref"] == ref if ref else r["description"] == description)),
            None,
        )
        status = row["status"] if row else "not listed yet"
        if status == "COMPLETE":
            return row  # type: ignore[return-value]  # a COMPLETE row is never None
        if status == "ERROR":
            raise NotScored(
                f"Kaggle could not score {name} to {competition!r}: "
                f"{(row or {}).get('error') or 'no reason given'} (status ERROR). "
                f"The file was received; see {page}",
                row,
            )
        elapsed = time.monotonic() - started
        left = timeout - elapsed
        if left <= 0:
            raise NotScored(
                f"Kaggle has not scored {name} to {competition!r} within {timeout:g} s "
                f"(status: {status}); it was submitted and will be scored without us. "
                "See its score later with `python -m pipeline submit --list`, "
                "or wait longer with --wait-timeout",
                row,
            )
        progress(f"{name}: {status}; {elapsed:.0f} s elapsed, at most {left:.0f} s left")
        time.sleep(min(every, left))


def _preflight(limits: Limits | None = None, hosts: tuple[str, ...] | None = None) -> str:
    """Credentials, then a TCP connection to each host the client will use (or to the proxy)."""
    method = require_credentials()
    timeout = (limits or Limits()).connect
    proxy = urllib.request.getproxies().get("https")  # requests would go through it
    if proxy:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        check_network(parts.hostname or "", parts.port or 8080, timeout, via="proxy")
        return method
    for host in _HOSTS if hosts is None else hosts:
        check_network(host, _PORT, timeout)
    return method


def _call(competition: str, action: Callable, limits: Limits | None = None, what: str = "call"):
    """Run ``action(api)`` on an authenticated ``KaggleApi``, each request within ``limits``."""
    limits = limits or Limits()
    trace = Trace()
    try:
        with limited_http(limits, trace):
            from kaggle.api.kaggle_api_extended import KaggleApi  # lazy: see the module docstring

            api = KaggleApi()
            api.authenticate()  # calls exit(1) when it accepts no credentials
            return action(api)
    except (Exception, SystemExit) as exc:
        if trace.expired:
            raise _deadline_error(competition, limits, trace, what) from exc
        error = _translate_kaggle_error(exc, competition, limits, trace, what)
        if error is None:  # unknown: let it surface with its traceback
            raise
        raise error from exc


def _deadline_error(competition: str, limits: Limits, trace: Trace, what: str) -> SourceUnavailable:
    doing = {
        "download": "the download of",
        "submit": "the submission to",
        "list": "listing the submissions of",
    }
    return SourceUnavailable(
        f"{doing.get(what, 'the call for')} {competition!r} ({trace.host}) was still running after "
        f"{limits.deadline:g} s, the total time allowed (PIPELINE_KAGGLE_DEADLINE): the server "
        f"answers, but too slowly to finish; it was cut off{'; nothing was kept' if what == 'download' else ''}"
        f"{_maybe_sent(what)}",
        fix="on a slow link, raise PIPELINE_KAGGLE_DEADLINE (seconds) and run the same command again"
        + (
            f"; or download the files by hand from https://www.kaggle.com/competitions/{competition}/data "
            "and set competition.source: local"
            if what == "download"
            else ""
        ),
    )


def _translate_kaggle_error(
    exc: BaseException,
    competition: str,
    limits: Limits | None = None,
    trace: Trace | None = None,
    what: str = "call",
) -> PipelineError | None:
    """Turn what kaggle raised into a :class:`SourceUnavailable`; None if it is not known."""
    limits, trace = limits or Limits(), trace or Trace()
    if isinstance(exc, SystemExit):
        return SourceUnavailable(
            "Kaggle accepted none of the credentials (invalid or expired token or key)", fix=_HOW_TO
        )
    # kaggle 2.2.5 raises requests.exceptions.HTTPError(..., response=...) for HTTP errors.
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    page = f"https://www.kaggle.com/competitions/{competition}"
    host = (
        urllib.parse.urlsplit(getattr(response, "url", None) or "").hostname if status is not None else None
    )
    if status in (401, 403, 404) and host and not host.endswith("kaggle.com"):
        return SourceUnavailable(
            f"the storage server {host} answered HTTP {status} to the "
            f"link Kaggle gave for {competition!r} (an expired link?)",
            fix="run the same command again; if it keeps failing, Kaggle is having trouble: try later",
        )
    if status == 401:
        return SourceUnavailable(
            "Kaggle rejected the credentials (HTTP 401): invalid or expired key or token", fix=_HOW_TO
        )
    if status == 403:
        return SourceUnavailable(
            f"Kaggle refused access to {competition!r} (HTTP 403): you have not accepted the "
            f"competition rules: open {page}/rules and click 'I Understand and Accept'",
            fix=f"accept the rules at {page}/rules, logged in as the credentials' user",
        )
    if status == 404:
        return SourceUnavailable(
            f"unknown competition {competition!r} (HTTP 404)",
            fix="set competition.name to the slug after /competitions/ in the competition's URL",
        )
    tries = _tries(trace)
    if status == 429:
        wait = f"; it asks to wait {trace.retry_after:.0f} s" if trace.retry_after else ""
        return SourceUnavailable(
            f"Kaggle is limiting the request rate (HTTP 429{tries}){wait}",
            fix="wait a few minutes (at least the time Kaggle asks for), then run the same command again",
        )
    if status is not None:
        kind = "a server error" if status >= 500 else "an error"
        return SourceUnavailable(
            f"Kaggle answered HTTP {status} ({kind}{tries}) for "
            f"{competition!r}: {_scrub(str(exc))[:300]}{_maybe_sent(what)}",
            fix="Kaggle is having trouble: try again later",
        )
    return _translate_network_error(exc, limits, trace, what)


def _translate_network_error(
    exc: BaseException, limits: Limits, trace: Trace, what: str
) -> PipelineError | None:
    import requests
    import urllib3

    host, tries = trace.host, _tries(trace)
    maybe_sent = _maybe_sent(what)
    slow_link = "on a slow link, raise PIPELINE_KAGGLE_{}_TIMEOUT (seconds)"
    if isinstance(exc, requests.exceptions.SSLError):
        return SourceUnavailable(
            f"the TLS connection to {host} failed ({_ssl_reason(exc)}): its certificate is not "
            "trusted, so nothing was sent",
            fix="behind a proxy or firewall that inspects HTTPS, export REQUESTS_CA_BUNDLE=<its "
            "CA certificate, a PEM file>; check that REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, if set, "
            "name a valid PEM file, and that the system clock is right",
        )
    if proxy_refused(exc):
        proxy = mask_url(urllib.request.getproxies().get("https", "?"))
        return SourceUnavailable(
            f"cannot reach Kaggle through the proxy {proxy} ({_reason(exc)})",
            fix="check HTTPS_PROXY (address, port, credentials), or unset it",
        )
    if isinstance(exc, requests.ConnectTimeout):
        return SourceUnavailable(
            f"cannot reach {host}: no connection within the connect timeout "
            f"({limits.connect:g} s{tries}): no network, or a firewall "
            "drops the traffic?",
            fix="check the internet connection (HTTPS_PROXY behind a proxy); " + slow_link.format("CONNECT"),
        )
    read_timeout = isinstance(exc, requests.ReadTimeout) or isinstance(
        _innermost(exc), (urllib3.exceptions.ReadTimeoutError, socket.timeout)
    )
    if read_timeout and _timeout_in(exc) == limits.connect != limits.read:  # urllib3 says "read"
        return SourceUnavailable(
            f"no answer from {host} while opening the connection (proxy "
            f"CONNECT or TLS handshake) within {limits.connect:g} s{tries}",
            fix="check HTTPS_PROXY and the network (a firewall or proxy "
            "holding connections?); " + slow_link.format("CONNECT"),
        )
    if read_timeout:
        return SourceUnavailable(
            f"{host} accepted the connection but sent nothing for "
            f"{limits.read:g} s (read timeout{tries}){maybe_sent}",
            fix="Kaggle may be overloaded: try again later; " + slow_link.format("READ"),
        )
    truncated = isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)
    ) or (isinstance(exc, ValueError) and "does not match expected size" in str(exc))
    if truncated and what == "download":
        return SourceUnavailable(
            f"the download from {host} was cut off before its end "
            f"({_reason(exc)}), {limits.retries + 1} times; nothing was kept",
            fix="try again later; PIPELINE_KAGGLE_RETRIES sets how many times a download is resumed",
        )
    if (
        isinstance(
            _innermost(exc), (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError)
        )
        or truncated
    ):
        return SourceUnavailable(
            f"the connection to {host} was closed or reset without an "
            f"answer ({_reason(exc)}{tries}){maybe_sent}",
            fix="Kaggle, a proxy or a firewall dropped the connection: try again later",
        )
    if isinstance(exc, (requests.ConnectionError, ConnectionError, TimeoutError, socket.gaierror)):
        return SourceUnavailable(
            f"cannot reach Kaggle: the connection to {host} failed "
            f"({_reason(exc)}{tries}): no network?{maybe_sent}",
            fix="check the internet connection (HTTPS_PROXY behind a proxy), then try again",
        )
    return None


def _timeout_in(exc: BaseException) -> float | None:
    """The seconds urllib3 names in "Read timed out. (read timeout=2)": during the proxy CONNECT
    or the TLS handshake that is the connect timeout."""
    found = re.search(r"read timeout=([0-9.]+)\)", str(exc))
    return float(found.group(1)) if found else None


def _maybe_sent(what: str) -> str:
    return (
        (
            "; the submission may have been recorded: check `python -m pipeline submit --list` "
            "before sending it again"
        )
        if what == "submit"
        else ""
    )


def _tries(trace: Trace) -> str:
    return f", {trace.attempts} attempts" if trace.attempts > 1 else ""


def _innermost(exc: BaseException) -> BaseException:
    """Follow requests/urllib3 wrappers (``args[0]``, ``.reason``) to the root cause."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if (
            not isinstance(inner, BaseException)
            and len(exc.args) > 1
            and isinstance(exc.args[1], BaseException)
        ):
            inner = exc.args[1]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _reason(exc: BaseException) -> str:
    root = _innermost(exc)
    text = str(root)
    if text.startswith("<") and ": " in text:  # "<urllib3...Connection object at 0x..>: Failed ..."
        text = text.split(": ", 1)[1]
    return _scrub(f"{type(root).__name__}: {text}" if text else type(root).__name__)[:200]


def _ssl_reason(exc: BaseException) -> str:
    found = re.search(r"\[SSL[^\]]*\] ([^('\"]+)", str(exc))
    return found.group(1).strip() if found else _reason(exc)


def _scrub(text: str) -> str:
    for secret in (os.environ.get("KAGGLE_KEY"), os.environ.get("KAGGLE_API_TOKEN")):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _single_top_folder(names: list[str]) -> str:
    tops = {name.split("/", 1)[0] for name in names}
    top = tops.pop() + "/" if len(tops) == 1 else ""
    return top if top and all(name.startswith(top) for name in names) else ""


def _config_path(env: Mapping[str, str], home: Path) -> Path:
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    legacy = home / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy / "kaggle.json"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle" / "kaggle.json"


def _check_config(path: Path) -> None:
    fix = f"download a new kaggle.json from {SETTINGS_URL}, save it as {path}, chmod 600 {path}"
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:  # exc.msg quotes none of the content
        raise SourceUnavailable(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", fix=fix
        ) from None
    if not isinstance(data, dict):
        raise SourceUnavailable(f'{path} must be a JSON object with "username" and "key"', fix=fix)
    missing = [
        key for key in ("username", "key") if not isinstance(data.get(key), str) or not data[key].strip()
    ]
    if missing:
        raise SourceUnavailable(
            f'{path} has no {" and no ".join(map(repr, missing))} (it needs {{"username": ..., "key": ...}})',
            fix=fix,
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SourceUnavailable(
            f"cannot read {path}: {exc.strerror}", fix=f"chmod 600 {path} as its owner"
        ) from None
