"""Keeping secrets out of messages: database URL passwords are masked."""

from __future__ import annotations

import re

# SQLAlchemy takes everything up to the first "@" after "user:" as the password, "/" and ":"
# included, so the mask does too (a message ends a URL at whitespace).
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@", re.IGNORECASE
)
# libpq and the database drivers also take the password as a query parameter.
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&](?:password|passwd|pwd|sslpassword)=)[^&#\s]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` in ``text`` with ``***``,
    and the value of ``?password=...`` query parameters."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['key']}***", text)
