"""Submission files: built in the sample submission's exact shape, checked before writing,
and sent to Kaggle from the command line (``python -m pipeline submit``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .core.errors import DataError, StageOutputError
from .core.io import atomic_path, sha256_file
from .sources.rawdata import read_csv


def check_submission(
    frame: pd.DataFrame, sample: pd.DataFrame, classes: list[str], name: str = "submission"
) -> None:
    """Raise :class:`DataError` unless ``frame`` matches ``sample``: columns, ids, order, labels.

    Kaggle matches rows by id, but a file whose order differs from the sample is almost
    always a bug (a shuffled join), so the order is checked too.
    """
    if list(frame.columns) != list(sample.columns):
        raise DataError(
            f"{name}: columns {list(frame.columns)} differ from the sample "
            f"submission's {list(sample.columns)}"
        )
    id_col, label_col = sample.columns[0], sample.columns[-1]
    ids, expected = frame[id_col].astype(str).str.strip(), sample[id_col].astype(str).str.strip()
    missing = sorted(set(expected) - set(ids))
    extra = sorted(set(ids) - set(expected))
    if missing or extra:
        raise DataError(
            f"{name}: ids differ from the sample submission: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(extra)} unknown (e.g. {extra[:3]})"
        )
    if ids.duplicated().any():
        raise DataError(f"{name}: duplicate ids, e.g. {ids[ids.duplicated()].iloc[0]!r}")
    if not ids.reset_index(drop=True).equals(expected.reset_index(drop=True)):
        row = int(np.flatnonzero(ids.to_numpy() != expected.to_numpy())[0])
        raise DataError(
            f"{name}: row {row + 2} has id {ids.iat[row]!r} where the sample has "
            f"{expected.iat[row]!r}; write rows in the sample submission's order"
        )
    labels = frame[label_col].astype(str).str.strip()
    bad = labels[~labels.isin(classes)]
    if len(bad):
        raise DataError(
            f"{name}: column {label_col!r} must hold one of {classes}; row "
            f"{int(bad.index[0]) + 2} holds {bad.iloc[0]!r}"
        )


def build_submission(test_ids: pd.Series, predicted: np.ndarray, sample: pd.DataFrame) -> pd.DataFrame:
    """Predicted labels in the sample's id order and column names."""
    id_col, label_col = sample.columns[0], sample.columns[-1]
    by_id = pd.Series(np.asarray(predicted), index=test_ids.astype(str).str.strip().to_numpy())
    order = sample[id_col].astype(str).str.strip()
    missing = order[~order.isin(by_id.index)]
    if len(missing):
        raise DataError(
            f"sample_submission.csv: id {missing.iloc[0]!r} (row {int(missing.index[0]) + 2}) "
            "is not in test.csv; the competition files do not match"
        )
    return pd.DataFrame({id_col: sample[id_col].to_numpy(), label_col: by_id[order].to_numpy()})


def write_submission(path: Path, frame: pd.DataFrame, sample: pd.DataFrame, classes: list[str]) -> None:
    """Check ``frame`` against ``sample``, then write it atomically."""
    check_submission(frame, sample, classes, name=str(path))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def read_sample(raw_dir: Path) -> pd.DataFrame:
    return read_csv(raw_dir / "sample_submission.csv")


# What a commit means for a submission: code and params. Outputs (dvc.lock, metrics/,
# submissions/, ...) do not count: `dvc repro` rewrites them before this stage runs.
CODE_AND_PARAMS = ("pipeline", "params.yaml", "dvc.yaml", "pyproject.toml")


def _git_commit() -> str:
    """HEAD's short hash, with ``-dirty`` when code or params differ from it."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", *CODE_AND_PARAMS],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def submission_folder(source: dict) -> str:
    """``submissions/<folder>/``: the Kaggle competition the data was downloaded from, else
    where it came from (``sample``, ``local-<folder name>``), so predictions for other data
    never overwrite a competition's files."""
    if source.get("source") == "kaggle":
        return source["competition"]
    if source.get("source") == "local":
        return f"local-{Path(source['local_dir']).name}"
    return str(source.get("source", "unknown"))


def not_kaggle_reason(index: dict, competition: str) -> str | None:
    """Why predictions recorded in ``index`` are not for ``competition``'s Kaggle data, or None."""
    source = index.get("source", {})
    kind = source.get("source")
    if kind == "kaggle" and source.get("competition") == competition:
        return None
    if kind == "sample":
        return (
            f"made from the bundled synthetic sample (competition.source: sample), not from "
            f"the {competition!r} competition's data: its scores say nothing about the leaderboard"
        )
    if kind == "local":
        return (
            f"made from the local folder {source.get('local_dir')} (competition.source: local), not "
            f"from Kaggle's {competition!r} download: its rows may not be Kaggle's test set"
        )
    if kind == "kaggle":
        return (
            f"made from the data of Kaggle competition {source.get('competition')!r}, not of {competition!r}"
        )
    return f"made from data of unrecorded origin (no source in index.json), not Kaggle's {competition!r}"


def write_submissions(params) -> dict:
    """``submissions`` stage: one CSV per model (and the ensemble) plus ``index.json``.

    The index lists each file with its CV score, the git commit (code and params) and the
    params hash that made it, and the data: its source and each raw file's sha256, so a
    submission can always be traced back to its run. The files go to
    ``submissions/<folder>/`` (:func:`submission_folder`).
    """
    import hashlib
    import json
    import logging

    from .core.outputs import load_predictions, load_prepared, report_models
    from .core.tasks import get_task
    from .sources import read_source_record

    task = get_task("competition", params)
    _, test_df, meta = load_prepared(task)
    source = read_source_record(task)
    folder = submission_folder(source)
    sample = read_sample(task.raw_dir)
    classes = meta.classes
    params_hash = hashlib.sha256(
        json.dumps(params.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()[:12]
    index = {
        "competition": params.competition.name,
        "metric": task.metric,
        "folder": folder,
        "source": {k: v for k, v in source.items() if k in ("source", "competition", "local_dir")},
        "data_sha256": {name: f["sha256"] for name, f in source.get("files", {}).items()},
        "git_commit": _git_commit(),
        "params_sha256": params_hash,
        "files": {},
    }
    with atomic_path(SUBMISSIONS_DIR) as out:
        for model in report_models(params, task):
            try:
                record, arrays = load_predictions(task, model)
            except StageOutputError:
                continue  # a model not trained yet
            labels = np.asarray(classes)[arrays["test"].argmax(axis=1)]
            name = f"{folder}/{model}.csv"
            write_submission(out / name, build_submission(test_df["id"], labels, sample), sample, classes)
            index["files"][name] = {
                "model": model,
                f"cv_{task.metric}": record.cv[task.metric],
                "sha256": sha256_file(out / name),
            }
        if not index["files"]:
            raise DataError("no model predictions found: run `dvc repro` to train the models first")
        _keep_kaggle_records(index, SUBMISSIONS_DIR / "index.json")
        best = max(index["files"], key=lambda n: index["files"][n][f"cv_{task.metric}"])
        index["best"] = best
        (out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    logging.getLogger(__name__).info("[submissions] %d files; best CV: %s", len(index["files"]), best)
    return index


SUBMISSIONS_DIR = Path("submissions")


def _keep_kaggle_records(index: dict, previous: Path) -> None:
    """Carry over the Kaggle scores recorded by ``submit`` (in the ``index.json`` being
    replaced) of every file whose content is unchanged: they still describe it."""
    import json

    try:
        old = json.loads(previous.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name, entry in index["files"].items():
        before = old.get(name) if isinstance(old, dict) else None
        if isinstance(before, dict) and before.get("sha256") == entry["sha256"] and before.get("kaggle"):
            entry["kaggle"] = before["kaggle"]


def _submission_message(entry: dict, index: dict) -> str:
    metric = index["metric"]
    return (
        f"{entry['model']}: CV {metric} {entry[f'cv_{metric}']:.4f}; commit {index['git_commit']}; "
        f"params {index['params_sha256']}"
    )


def _cv_of(row: dict, index: dict) -> str:
    """The CV score a Kaggle submission was sent with: from the index record of its ref, else
    from its description (the default message names it), else "-"."""
    import re

    metric = index.get("metric", "accuracy")
    for entry in index.get("files", {}).values():
        for sent in entry.get("kaggle", []):
            if row.get("ref") and sent.get("ref") == row["ref"]:
                return f"{entry[f'cv_{metric}']:.4f}"
    found = re.search(r"CV \w+ ([0-9.]+)", str(row.get("description") or ""))
    return found.group(1) if found else "-"


def _list(competition: str, index: dict) -> None:
    from .sources import kaggle

    rows = kaggle.list_submissions(competition)
    print(f"{'date':<20} {'status':<9} {'CV':>7} {'public':>8} {'private':>8}  description")
    for row in rows:
        print(
            f"{str(row['date'])[:19]:<20} {str(row['status']):<9} {_cv_of(row, index):>7} "
            f"{str(row['public_score'] or '-'):>8} {str(row['private_score'] or '-'):>8}  "
            f"{row['description']}"
        )


def _record(index_path: Path, key: str, ref: int | None, message: str, row: dict | None) -> None:
    """Keep what Kaggle said about a submission of ``key`` in ``index.json``, beside its CV.

    A ``dvc repro`` that rewrites the file keeps the records of files whose content did not
    change (:func:`write_submissions`)."""
    import json

    from .core.io import write_json

    index = json.loads(index_path.read_text())
    records = index["files"][key].setdefault("kaggle", [])
    record = next((r for r in records if ref and r.get("ref") == ref), None)
    if record is None:
        record = {"ref": ref, "message": message}
        records.append(record)
    if row is not None:
        record.update(
            {k: row.get(k) for k in ("date", "status", "public_score", "private_score")},
        )
        if row.get("error"):
            record["error"] = row["error"]
    else:
        record.setdefault("status", "PENDING")
    write_json(index_path, index)


def main(args) -> None:
    """``python -m pipeline submit``: check a submission file, then send it to Kaggle."""
    import json

    from .core.errors import ParamsError, PipelineError
    from .core.params import load_params
    from .core.tasks import get_task
    from .models import check_models
    from .sources import kaggle

    params = check_models(load_params(args.params))
    competition = params.competition.name
    index_path = SUBMISSIONS_DIR / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"files": {}}
    if args.list:
        _list(competition, index)
        return
    if args.wait and not (args.wait_timeout > 0 and args.poll_every > 0):
        raise ParamsError(
            f"--wait-timeout {args.wait_timeout:g} and --poll-every {args.poll_every:g} must be seconds > 0"
        )
    path = Path(args.file or SUBMISSIONS_DIR / index.get("folder", competition) / "ensemble.csv")
    task = get_task("competition", params)
    sample = read_sample(task.raw_dir)
    frame = read_csv(path)
    check_submission(frame, sample, list(task.classes or ()), name=str(path))
    key = (
        path.resolve().relative_to(SUBMISSIONS_DIR.resolve()).as_posix()
        if path.resolve().is_relative_to(SUBMISSIONS_DIR.resolve())
        else None
    )
    entry = index["files"].get(key) if key else None
    if entry is None and not args.force:
        raise PipelineError(
            f"{path}: unknown file, not written by this pipeline (not in {index_path}); "
            "its CV score and commit are unknown. Pass --force (and --message) to send it anyway"
        )
    if entry is not None and sha256_file(path) != entry["sha256"] and not args.force:
        raise PipelineError(
            f"{path}: modified after the pipeline wrote it (sha256 differs from {index_path}); "
            "rerun `dvc repro`, or pass --force to send it anyway"
        )
    reason = not_kaggle_reason(index, competition) if entry is not None else None
    if reason and not args.force:
        raise PipelineError(
            f"{path}: refusing to send predictions {reason}. Fetch the competition with "
            "`dvc exp run -S competition.source=kaggle`, or pass --force to send it anyway"
        )
    message = args.message or (_submission_message(entry, index) if entry else f"{path.name} (manual)")
    if args.dry_run:
        print(
            f"OK: {path} matches sample_submission.csv ({len(frame)} rows).\n"
            f"Would submit to {competition!r} with message: {message}"
        )
        return
    ref = kaggle.submit(competition, path, message)
    if key is not None and entry is not None:
        _record(index_path, key, ref, message, None)
    print(f"submitted {path} to {competition!r} (ref {ref or '?'}): {message}", flush=True)
    if not args.wait:
        print("see scores with: python -m pipeline submit --list")
        return
    try:
        row = kaggle.wait_for_score(
            competition,
            ref,
            message,
            args.wait_timeout,
            args.poll_every,
            lambda line: print(line, flush=True),
        )
    except kaggle.NotScored as exc:
        if key is not None and entry is not None and exc.row is not None:
            _record(index_path, key, ref, message, exc.row)
        raise
    metric = index.get("metric", task.metric)
    cv = f"CV {metric} {entry[f'cv_{metric}']:.4f}" if entry else "CV unknown: not a pipeline file"
    print(f"public score {row['public_score']} ({cv}); private {row['private_score'] or 'not yet'}")
    if key is not None and entry is not None:
        _record(index_path, key, ref, message, row)
        print(f"recorded in {index_path}")
