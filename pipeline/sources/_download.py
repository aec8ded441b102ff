"""Download and unpack a public archive: hash-checked, atomic, safe against path escapes.

Shared by every loader in :mod:`pipeline.sources`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from pipeline.core.errors import DataError, SourceUnavailable
from pipeline.core.io import atomic_path, sha256_file

_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


def fetch_url(url: str, dest: Path, sha256: str, timeout: float = 10, fix: str = "") -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` already has hash ``sha256``; return ``dest``.

    The body is streamed to a temporary file beside ``dest`` and renamed onto it only
    when its sha256 matches. Network failures raise :class:`SourceUnavailable` (with
    ``fix``, or a default naming the URL); a hash mismatch raises :class:`DataError`.
    """
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    digest = hashlib.sha256()
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"{url}: downloaded file has sha256 {digest.hexdigest()}, expected {sha256}; "
                    "the partial/corrupt download was deleted. Retry, or check that the URL "
                    "still serves the original archive."
                )
    except _NETWORK_ERRORS as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SourceUnavailable(
            f"cannot download {url}: {reason}",
            fix=fix or f"check the network connection, or download {url} by hand to {dest}",
        ) from exc
    return dest


def safe_extract_tar(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into the folder ``dest`` atomically; return ``dest``.

    Refuses (DataError) members with absolute paths or ``..`` components, links pointing
    outside ``dest``, and device files; nothing is extracted then.
    """
    archive, dest = Path(archive), Path(dest)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(archive, member)
        with atomic_path(dest) as tmp:
            tmp.mkdir()
            tar.extractall(tmp, members=members, filter="data")
    return dest


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    def escapes(name: str, base: PurePosixPath = PurePosixPath()) -> bool:
        path = base / name
        depth = 0
        for part in path.parts:
            depth += -1 if part == ".." else 0 if part in (".", "") else 1
            if depth < 0:
                return True
        return path.is_absolute() or name.startswith(("/", "\\")) or (os.sep != "/" and ":" in name)

    bad = escapes(member.name)
    if member.issym():
        bad = bad or escapes(member.linkname, PurePosixPath(member.name).parent)
    elif member.islnk():
        bad = bad or escapes(member.linkname)
    elif not (member.isfile() or member.isdir()):
        bad = True
    if bad:
        raise DataError(
            f"{archive}: refusing to extract member {member.name!r}"
            f"{' -> ' + member.linkname if member.linkname else ''}: it is a device file or "
            "points outside the destination folder. The archive is not the expected one; delete it."
        )
