"""Text cleaning and field joining: pure functions.

``clean_text`` is idempotent (cleaning clean text changes nothing) and deterministic.
"""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^<>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_DIGITS = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")
URL_TOKEN = "xxurl"
EMPTY_TOKEN = "xxempty"


def _clean_once(
    text: str, lowercase: bool, keep_digits: bool, keep_punctuation: bool, urls: str, max_chars: int
) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    if urls != "keep":
        text = _URL.sub(f" {URL_TOKEN} " if urls == "token" else " ", text)
    text = _CONTROL.sub(" ", text)
    if lowercase:
        text = text.lower()
    if not keep_digits:
        text = _DIGITS.sub("0", text)
    if not keep_punctuation:
        text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text[:max_chars]).strip()


def clean_text(
    text: object,
    *,
    lowercase: bool = True,
    keep_digits: bool = True,
    keep_punctuation: bool = True,
    urls: str = "token",
    max_chars: int = 100_000,
) -> str:
    """Normalise one document.

    NFKC unicode normalisation, HTML entities decoded and tags removed, URLs replaced by
    ``xxurl`` (``urls="token"``), dropped (``"drop"``) or kept, control characters removed,
    optional lower-casing, digit runs mapped to ``0`` unless ``keep_digits``, punctuation
    removed unless ``keep_punctuation``, whitespace collapsed, cut to ``max_chars``.
    ``None``/NaN become the empty string.
    """
    if urls not in ("token", "keep", "drop"):
        raise ValueError(f"urls must be 'token', 'keep' or 'drop', got {urls!r}")
    if text is None or (isinstance(text, float) and text != text):
        return ""
    text = str(text)
    # Decoding entities can reveal new tags/entities ("&amp;lt;b&amp;gt;"): iterate to a fixed point.
    for _ in range(len(text) + 2):  # until a fixed point; each changing pass peels a layer
        cleaned = _clean_once(text, lowercase, keep_digits, keep_punctuation, urls, max_chars)
        if cleaned == text:
            break
        text = cleaned
    return text


def join_fields(fields: dict[str, str]) -> str:
    """Join named fields with markers (``xxtitle … xxauthor …``) so models see which is which.

    An empty field becomes ``xxempty``: a missing author is itself a signal.
    With a single field the text is returned as is.
    """
    if len(fields) == 1:
        return next(iter(fields.values()))
    parts = []
    for name, value in fields.items():
        marker = "xx" + re.sub(r"\W", "", name.lower())
        parts.append(f"{marker} {value or EMPTY_TOKEN}")
    return " ".join(parts)
