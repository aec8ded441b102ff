"""Timeouts and retries for every HTTP request the ``kaggle`` client makes.

kaggle 2.2.5 sends through ``requests`` without a timeout (kagglesdk's API calls, the
storage redirect, the submission upload), so a server that accepts a connection and never
answers hangs it forever. :func:`limited_http` bounds each request for the duration of one
Kaggle call: a connect and a read timeout, and bounded retries with exponential backoff
for HTTP 429 and 5xx and for connections that fail or are reset, honouring ``Retry-After``.

A total deadline bounds the whole call, retries included: a server that trickles a byte
inside every read timeout never trips the read timeout, so when the deadline passes the
open connections are shut down and no further request is sent (:class:`DeadlineExceeded`).

The limits come from the environment (:func:`limits_from_env`); a request that may have
created something on Kaggle (``CreateSubmission``) is retried only when it certainly never
reached the server (no connection, or HTTP 429), so a submission is never sent twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.core.errors import ParamsError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # seconds: a longer Retry-After is reported instead of waited for
_NOT_REPEATABLE = ("/CreateSubmission",)  # creates a submission: never sent twice
_ENV = {
    "connect": ("PIPELINE_KAGGLE_CONNECT_TIMEOUT", 10.0),
    "read": ("PIPELINE_KAGGLE_READ_TIMEOUT", 60.0),
    "retries": ("PIPELINE_KAGGLE_RETRIES", 3),
    "backoff": ("PIPELINE_KAGGLE_BACKOFF", 2.0),
    "deadline": ("PIPELINE_KAGGLE_DEADLINE", 1800.0),
}
_POSITIVE = ("connect", "read", "deadline")


@dataclasses.dataclass(frozen=True)
class Limits:
    """``connect``/``read``: seconds per request; ``retries``: extra attempts per request;
    ``backoff``: first wait in seconds, doubled per retry (capped at 60 s); ``deadline``:
    seconds for one whole Kaggle call (a download with its retries and resumes)."""

    connect: float = 10.0
    read: float = 60.0
    retries: int = 3
    backoff: float = 2.0
    deadline: float = 1800.0

    def wait(self, attempt: int) -> float:
        return min(self.backoff * 2**attempt, 60.0)


@dataclasses.dataclass
class Trace:
    """What the last request did: its host, how many attempts, the last Retry-After seen."""

    host: str = "api.kaggle.com"
    attempts: int = 0
    retry_after: float | None = None
    expired: bool = False  # the deadline passed: connections cut, no request sent since
    open: list = dataclasses.field(default_factory=list)  # responses whose body may be read


class DeadlineExceeded(Exception):
    """No request is sent once the call's deadline has passed. Not a ``requests`` or
    ``OSError`` exception on purpose: kaggle's download loop retries those."""


def limits_from_env(env: Mapping[str, str] | None = None) -> Limits:
    """:class:`Limits` from ``PIPELINE_KAGGLE_{CONNECT_TIMEOUT,READ_TIMEOUT,RETRIES,BACKOFF,
    DEADLINE}``; a value that is not a non-negative number (timeouts and the deadline:
    positive) raises :class:`ParamsError`."""
    env = os.environ if env is None else env
    values = {}
    for field, (name, default) in _ENV.items():
        raw = env.get(name, "").strip()
        if not raw:
            values[field] = default
            continue
        try:
            value = int(raw) if isinstance(default, int) else float(raw)
        except ValueError:
            value = -1
        if value < 0 or (field in _POSITIVE and value == 0):
            kind = (
                "a whole number >= 0"
                if isinstance(default, int)
                else "a number of seconds > 0"
                if field in _POSITIVE
                else "a number of seconds >= 0"
            )
            raise ParamsError(
                f"environment variable {name}={raw!r} must be {kind} (default {default}); fix or unset it"
            )
        values[field] = value
    return Limits(
        values["connect"], values["read"], int(values["retries"]), values["backoff"], values["deadline"]
    )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@contextlib.contextmanager
def limited_http(limits: Limits, trace: Trace | None = None) -> Iterator[Trace]:
    """Within the block, every ``requests`` request has ``limits``' timeouts and retries, and
    the block's requests end by ``limits.deadline`` seconds after it starts."""
    import requests

    trace = Trace() if trace is None else trace
    original = requests.Session.send
    no_retry = requests.adapters.Retry(0, read=False)  # requests' own default
    ends = time.monotonic() + limits.deadline
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(limits.deadline):
            trace.expired = True
            for response in list(trace.open):
                _cut(response)

    def check_deadline(wait: float = 0.0) -> None:
        if trace.expired or time.monotonic() + wait > ends:
            trace.expired = True
            raise DeadlineExceeded(f"past the {limits.deadline:g} s deadline")

    def send(
        session: requests.Session, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        kwargs["timeout"] = (limits.connect, limits.read)
        for adapter in session.adapters.values():  # kaggle's upload mounts Retry(total=10)
            if isinstance(adapter, requests.adapters.HTTPAdapter):  # (minutes): the retries
                adapter.max_retries = no_retry  # are ours alone
        repeatable = _repeatable(request)
        trace.host = urllib.parse.urlsplit(request.url or "").hostname or trace.host
        trace.attempts, trace.retry_after = 0, None
        while True:
            check_deadline()
            trace.attempts += 1
            try:
                response = original(session, request, **kwargs)
                trace.open.append(response)
            except requests.RequestException as exc:
                retry = trace.attempts <= limits.retries and _retry_error(exc, repeatable)
                if not retry:
                    raise
                delay, why = limits.wait(trace.attempts - 1), _describe(exc)
            else:
                status = response.status_code
                if (
                    status not in RETRY_STATUS
                    or trace.attempts > limits.retries
                    or not (repeatable or status == 429)
                ):
                    return response
                trace.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                if trace.retry_after is not None and trace.retry_after > MAX_RETRY_AFTER:
                    return response  # reported with the wait Kaggle asked for
                delay = limits.wait(trace.attempts - 1) if trace.retry_after is None else trace.retry_after
                why = f"HTTP {status}"
                response.close()
            check_deadline(delay)
            log.warning(
                "Kaggle: %s from %s; retry %d of %d in %.1f s",
                why,
                trace.host,
                trace.attempts,
                limits.retries,
                delay,
            )
            time.sleep(delay)

    # Patched on the class for the block: kaggle makes its sessions where we cannot reach them.
    requests.Session.send = send  # type: ignore[method-assign, assignment]  # deliberate, undone below
    threading.Thread(target=watchdog, daemon=True).start()
    try:
        yield trace
    finally:
        done.set()
        requests.Session.send = original  # type: ignore[method-assign]  # the class's own again


def _cut(response) -> None:
    """Shut down the socket ``response`` is read from, so a read blocked on it returns now."""
    raw = getattr(response, "raw", None)
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:  # the connection went back to the pool: the body is read already
        return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the TCP socket under any TLS layer


def _repeatable(request) -> bool:
    """Safe to send again: not a submission, and a body that can be re-sent (not a stream)."""
    path = urllib.parse.urlsplit(request.url).path
    return not path.endswith(_NOT_REPEATABLE) and isinstance(request.body, (bytes, str, type(None)))


def _retry_error(exc, repeatable: bool) -> bool:
    import requests

    if isinstance(exc, requests.exceptions.SSLError) or proxy_refused(exc):
        return False  # a certificate or proxy setting: the same again fails the same way
    if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
        return True  # the request never left: safe even for a submission
    return repeatable and isinstance(
        exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    )


def proxy_refused(exc) -> bool:
    """The proxy itself failed (refused the connection or the tunnel). urllib3 also labels
    ProxyError a connection that Kaggle closed through a working tunnel: that is not one."""
    import requests

    if not isinstance(exc, requests.exceptions.ProxyError):
        return False
    text = str(exc)
    return "Tunnel connection failed" in text or "NewConnectionError" in text or "Connection refused" in text


def _never_connected(exc) -> bool:
    import urllib3

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _describe(exc) -> str:
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, requests.Timeout):
        return "no answer within the read timeout"
    return f"connection failed ({type(exc).__name__})"
