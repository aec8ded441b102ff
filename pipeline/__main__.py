"""Command line: one subcommand per stage, as called from ``dvc.yaml``.

    python -m pipeline fetch --task competition
    python -m pipeline train --task imdb --model word_lr
    python -m pipeline submit --dry-run

Errors the user can fix print one clear message (no traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from .core.errors import PipelineError
from .core.logs import configure_logging
from .core.tasks import TASK_NAMES

log = logging.getLogger("pipeline")


# The per-task stages: name → (module, function, help); imported on use so `fetch` never
# pays for TensorFlow.
_STAGES = {
    "fetch": ("fetch", "fetch", "download or copy the raw data"),
    "prepare": ("prepare", "prepare", "validate, clean, make folds"),
    "tokenize": ("tokenize", "tokenize", "fit the vocabulary, write integer sequences"),
    "embed": ("embed", "embed", "train word2vec vectors on the task's text"),
    "encode": ("encode", "encode", "frozen pretrained-encoder embeddings of the task's text"),
    "train": ("train", "train", "out-of-fold and test predictions for one model"),
    "tune": ("tune", "tune", "Optuna search for one RNN model"),
    "ensemble": ("ensemble", "ensemble", "stack/blend the models' out-of-fold predictions"),
    "report": ("report", "report", "metrics, plots, markdown report"),
}


def _params(args):
    """``--params`` read, validated, and its model names checked against the registry."""
    from .core.params import load_params
    from .models import check_models

    return check_models(load_params(args.params))


def _stage(name: str):
    def run(args) -> None:
        import importlib

        from .core.tasks import get_task

        params = _params(args)
        task = get_task(args.task, params)
        if name in ("train", "tune"):
            _check_model(name, args.model)
        module, function, _ = _STAGES[name]
        stage = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        if name == "train":
            stage(task, args.model, params)
        elif name == "tune":
            stage(task, args.model, params, storage=args.storage, processes=args.processes)
        else:
            stage(task, params)

    return run


def _check_model(stage: str, model: str) -> None:
    from .core.errors import ParamsError
    from .models import MODELS, in_group

    known = sorted(MODELS) if stage == "train" else in_group("rnn")
    if model not in known:
        raise ParamsError(
            f"--model {model!r} is not a{'n RNN' if stage == 'tune' else ''} model "
            f"of the registry; choose one of {known}"
        )


def _fingerprint(args) -> None:
    from .fingerprint import fingerprints

    fingerprints(_params(args))


def _summary(args) -> None:
    from .summary import summary

    summary(_params(args))


def _submissions(args) -> None:
    from .submit import write_submissions

    write_submissions(_params(args))


def _submit(args) -> None:
    from .submit import main

    main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and TensorFlow's own logs and warnings"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "fingerprint", help="record every task's data source files (fetch reruns when they change)"
    ).set_defaults(func=_fingerprint)
    for name, (_, _, helptext) in _STAGES.items():
        stage = sub.add_parser(name, help=helptext)
        stage.add_argument("--task", required=True, choices=TASK_NAMES)
        if name in ("train", "tune"):
            stage.add_argument("--model", required=True)
        if name == "tune":
            stage.add_argument(
                "--storage", default=None, help="Optuna storage URL (default: tune.storage in params.yaml)"
            )
            stage.add_argument(
                "--processes",
                "--workers",  # its former name, still accepted
                dest="processes",
                type=int,
                default=None,
                help="trials run side by side, one per process (default: neural.processes)",
            )
        stage.set_defaults(func=_stage(name))
    sub.add_parser(
        "summary",
        help="gather the validation tasks' test scores into metrics/validation.json "
        "and the headline numbers into metrics/headline.json",
    ).set_defaults(func=_summary)
    sub.add_parser(
        "submissions", help="write submissions/<competition>/<model>.csv and index.json"
    ).set_defaults(func=_submissions)
    submit = sub.add_parser("submit", help="check a submission file and send it to Kaggle")
    submit.add_argument("--file", help="default: submissions/<competition>/ensemble.csv")
    submit.add_argument("--message", help="default: model, CV score and git commit")
    submit.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    submit.add_argument(
        "--list", action="store_true", help="list recent submissions: CV, public and private scores"
    )
    submit.add_argument(
        "--force",
        action="store_true",
        help="send a file the pipeline did not write (or that was edited since)",
    )
    submit.add_argument(
        "--wait",
        action="store_true",
        help="after sending, poll Kaggle until the submission is scored; print and record the score",
    )
    submit.add_argument(
        "--wait-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="--wait: give up after this long in all (default 600; the submission stays sent)",
    )
    submit.add_argument(
        "--poll-every",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="--wait: seconds between two looks at the submissions list (default 15)",
    )
    submit.set_defaults(func=_submit)
    return parser


def _describe_os_error(error: OSError) -> str:
    """What an ``OSError`` means for the user: only a full or read-only disk is "cannot write"."""
    import errno

    where = f" {error.filename}" if error.filename else ""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        hint = "free some disk space" if error.errno != errno.EROFS else "the file system is read-only"
        return f"cannot write{where}: {reason}; {hint}"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied on{where} (cannot write or read it); fix its permissions"
    hint = {
        errno.ENOENT: "check that it exists (or rerun the stage that makes it)",
        errno.EISDIR: "it is a folder where a file is expected",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ELOOP: "a symbolic link in the path loops",
    }.get(error.errno or 0, "check the path")
    return f"cannot access{where}: {reason}; {hint}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    started = time.perf_counter()
    try:
        args.func(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, read-only folder, a missing or unreadable file, ...
        print(
            f"error: {_describe_os_error(error)}, then rerun. Outputs of earlier stages are untouched.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted: outputs of this stage were not written", file=sys.stderr)
        return 130
    import resource

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    log.info(
        "%s%s done in %.1f s, peak memory %.2f GiB",
        args.command,
        f" {args.task}" if getattr(args, "task", None) else "",
        time.perf_counter() - started,
        peak_gib,
    )
    return 0


def _exit(code: int) -> None:
    """Exit with ``code``. After TensorFlow was imported, without the interpreter's teardown
    (seconds of TensorFlow's destructors, every stage of which has written and closed its
    outputs): flush the logs and leave."""
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
