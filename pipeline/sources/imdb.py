"""IMDB Large Movie Review Dataset v1.0 (aclImdb, Maas et al. 2011): 25,000 train / 25,000 test.

Output of every loader: ``(train, test)`` DataFrames with columns ``id`` ("train_pos_123"),
``text`` and ``label`` ("neg"/"pos"), ordered neg then pos, each by ascending review id.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.sources._download import fetch_url, safe_extract_tar

# Canonical archive; sha256 (84,125,825 bytes) as listed in tensorflow/datasets
# tensorflow_datasets/url_checksums/imdb_reviews.txt.
URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
LABELS = ("neg", "pos")
SPLITS = ("train", "test")

_LAYOUTS = (
    "(a) a folder holding aclImdb_train.csv[.gz] and aclImdb_test.csv[.gz] "
    "(columns review_id,label,text; label 1 = pos), or "
    "(b) the extracted aclImdb/ folder with train/{pos,neg}/<id>_<rating>.txt "
    "and test/{pos,neg}/<id>_<rating>.txt"
)


def load_local(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load IMDB from the CSV pair or the extracted ``aclImdb/`` folder at ``path``."""
    path = Path(path)
    train_csv, test_csv = _csv(path, "train"), _csv(path, "test")
    if train_csv and test_csv:
        frames = [_read_csv(train_csv, "train"), _read_csv(test_csv, "test")]
    else:
        folder = path / "aclImdb" if (path / "aclImdb" / "train").is_dir() else path
        if not all((folder / s / c).is_dir() for s in SPLITS for c in LABELS):
            raise DataError(f"{path}: not an IMDB dataset folder. Expected {_LAYOUTS}.")
        frames = [_read_folder(folder, split) for split in SPLITS]
    return frames[0], frames[1]


def download(cache_dir: Path, timeout: float = 10) -> Path:
    """Download (once) and extract aclImdb_v1.tar.gz into ``cache_dir``; return the aclImdb folder."""
    cache_dir = Path(cache_dir)
    out = cache_dir / "aclImdb_v1"
    if not (out / "aclImdb" / "test").is_dir():
        fix = (
            f"download {URL} when online, or set `validation.imdb.source: local` and "
            "`validation.imdb.local_dir` to a folder with aclImdb_train.csv(.gz) and "
            "aclImdb_test.csv(.gz), or to the extracted aclImdb folder"
        )
        archive = fetch_url(URL, cache_dir / "aclImdb_v1.tar.gz", SHA256, timeout, fix=fix)
        safe_extract_tar(archive, out)
    return out / "aclImdb"


def _csv(path: Path, split: str) -> Path | None:
    for name in (f"aclImdb_{split}.csv", f"aclImdb_{split}.csv.gz"):
        if (path / name).is_file():
            return path / name
    return None


def _read_csv(file: Path, split: str) -> pd.DataFrame:
    raw = pd.read_csv(file, keep_default_na=False, dtype={"text": str})
    missing = {"review_id", "label", "text"} - set(raw.columns)
    if missing:
        raise DataError(f"{file}: missing column(s) {sorted(missing)}; expected {_LAYOUTS}.")
    bad = ~raw["label"].astype(str).isin(["0", "1"])
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{file}: row {row + 2} has label {str(raw['label'].iloc[row])!r}; expected 0 (neg) or 1 (pos)."
        )
    label = raw["label"].astype(int).map(dict(enumerate(LABELS)))
    review = raw["review_id"].astype(int)
    frame = pd.DataFrame(
        {"id": f"{split}_" + label + "_" + review.astype(str), "text": raw["text"], "label": label}
    )
    frame["_k"], frame["_r"] = label.map(LABELS.index), review
    return _finish(frame, file)


def _read_folder(folder: Path, split: str) -> pd.DataFrame:
    rows = []
    for label in LABELS:
        for file in (folder / split / label).glob("*.txt"):
            review = file.stem.split("_")[0]
            if not review.isdigit():
                raise DataError(f"{file}: file name is not <id>_<rating>.txt; expected {_LAYOUTS}.")
            text = file.read_text(encoding="utf-8")
            rows.append((f"{split}_{label}_{review}", text, label, LABELS.index(label), int(review)))
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "_k", "_r"])
    return _finish(frame, folder / split)


def _finish(frame: pd.DataFrame, source: Path) -> pd.DataFrame:
    frame = frame.sort_values(["_k", "_r"], kind="stable").drop(columns=["_k", "_r"]).reset_index(drop=True)
    dup = frame["id"].duplicated()
    if dup.any():
        raise DataError(
            f"{source}: duplicate review id {frame['id'][dup].iloc[0]!r}; each id must appear once per class."
        )
    return frame.astype({"id": str, "text": str, "label": str})
