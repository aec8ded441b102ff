"""Reuters-21578 (Distribution 1.0) from the raw SGML, and its R52 single-label subset.

R52 (Cardoso-Cachopo 2007): ModApte split (LEWISSPLIT TRAIN/TEST, TOPICS="YES"),
documents with exactly one topic, topics present in both splits: 6,532 train /
2,568 test documents, 52 classes. Documents without a BODY (TYPE="BRIEF" /
"UNPROC") are kept; the published counts include them.
"""

from __future__ import annotations

import gzip
import html
import re
from pathlib import Path

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.sources._download import fetch_url, safe_extract_tar

# Canonical archive (UCI KDD). sha256 of reuters21578.tar.gz (8,150,596 bytes) from
# huggingface/datasets datasets/reuters21578/dataset_infos.json (download_checksums);
# scikit-learn's out-of-core classification example checks the same value for the UCI
# mirror https://archive.ics.uci.edu/ml/machine-learning-databases/reuters21578-mld/.
URL = "https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz"
SHA256 = "3bae43c9b14e387f76a61b6d82bf98a4fb5d3ef99ef7e7075ff2ccbcf59f9d30"

_DOC = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S | re.I)
_ATTR = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
_D = re.compile(r"<D>(.*?)</D>", re.S | re.I)
_TEXT = re.compile(r"<TEXT\b[^>]*>(.*?)</TEXT>", re.S | re.I)
_HEAD = re.compile(r"<(TITLE|DATELINE|AUTHOR)>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def _element(tag: str, block: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", block, re.S | re.I)
    return match.group(1) if match else None


def _clean(text: str) -> str:
    return html.unescape(text).strip()  # &#3; and other control-character refs become ""


def parse_sgml(text: str) -> list[dict]:
    """Parse the <REUTERS> documents of one SGML file, in file order.

    Each dict: newid (int), lewissplit, topics_attr, topics (list of str), title, body.
    ``body`` is the BODY element; for documents without one (TYPE="UNPROC") it is the
    TEXT content outside TITLE/DATELINE/AUTHOR, so a title-only brief gets "".
    """
    docs = []
    for attrs, block in _DOC.findall(text):
        attr = {k.upper(): v for k, v in _ATTR.findall(attrs)}
        if "NEWID" not in attr:
            raise DataError(f"Reuters SGML document without NEWID: <REUTERS{attrs}>")
        body = _element("BODY", block)
        if body is None:
            match = _TEXT.search(block)
            body = _TAG.sub("", _HEAD.sub("", match.group(1))) if match else ""
        docs.append(
            {
                "newid": int(attr["NEWID"]),
                "lewissplit": attr.get("LEWISSPLIT", ""),
                "topics_attr": attr.get("TOPICS", ""),
                "topics": [_clean(t) for t in _D.findall(_element("TOPICS", block) or "")],
                "title": _clean(_element("TITLE", block) or ""),
                "body": _clean(body),
            }
        )
    return docs


def read_documents(path: Path) -> list[dict]:
    """All documents of the reut2-*.sgm[.gz] files in folder ``path``, sorted by NEWID."""
    path = Path(path)
    files = sorted(f for f in path.glob("reut2-*.sgm*") if f.name.endswith((".sgm", ".sgm.gz")))
    if not files:
        raise DataError(
            f"{path}: no Reuters-21578 files (reut2-000.sgm … reut2-021.sgm, optionally .gz). "
            "Point to the extracted reuters21578 folder."
        )
    docs: dict[int, dict] = {}
    for file in files:  # reut2-000.sgm and reut2-000.sgm.gz hold the same documents
        raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
        for doc in parse_sgml(raw.decode("latin-1")):
            docs.setdefault(doc["newid"], doc)
    return [docs[k] for k in sorted(docs)]


def load_r52(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """R52 train/test DataFrames (id "reuters_<NEWID>", text = title + "\\n" + body, label = topic)."""
    splits: dict[str, list[dict]] = {"TRAIN": [], "TEST": []}
    for doc in read_documents(path):
        if doc["topics_attr"] == "YES" and doc["lewissplit"] in splits and len(doc["topics"]) == 1:
            splits[doc["lewissplit"]].append(doc)
    keep = {d["topics"][0] for d in splits["TRAIN"]} & {d["topics"][0] for d in splits["TEST"]}

    def frame(docs: list[dict]) -> pd.DataFrame:
        rows = [
            (f"reuters_{d['newid']}", "\n".join(p for p in (d["title"], d["body"]) if p), d["topics"][0])
            for d in docs
            if d["topics"][0] in keep
        ]
        return pd.DataFrame(rows, columns=["id", "text", "label"]).astype(str)

    return frame(splits["TRAIN"]), frame(splits["TEST"])


def download(cache_dir: Path, timeout: float = 10) -> Path:
    """Download (once) and extract reuters21578.tar.gz into ``cache_dir``; return the SGML folder."""
    cache_dir = Path(cache_dir)
    out = cache_dir / "reuters21578"
    if not (out / "reut2-000.sgm").is_file():
        fix = (
            f"download {URL} when online, or set `validation.reuters.source: local` and "
            "`validation.reuters.local_dir` to a folder with the reut2-*.sgm(.gz) files"
        )
        archive = fetch_url(URL, cache_dir / "reuters21578.tar.gz", SHA256, timeout, fix=fix)
        safe_extract_tar(archive, out)
    return out
