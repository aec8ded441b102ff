"""Run tuning workers: in this process, or as several local processes on one study."""

from __future__ import annotations

import logging
import multiprocessing

from .params import Params
from .tasks import Task

log = logging.getLogger(__name__)


def _worker_main(task: Task, kind: str, params: Params, storage_url: str | None, index: int) -> None:
    import os

    from .tune import run_worker

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker{index} %(message)s",
                        datefmt="%H:%M:%S")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_worker(task, kind, params, storage_url)


def run_workers(task: Task, kind: str, params: Params, storage_url: str | None, workers: int) -> None:
    """Optimise one shared study with ``workers`` processes (1 = in this process).

    The study must exist already (created once, before the workers start).
    """
    from .tune import run_worker

    if workers <= 1:
        run_worker(task, kind, params, storage_url)
        return
    context = multiprocessing.get_context("spawn")  # TensorFlow state must not be forked
    procs = [context.Process(target=_worker_main, args=(task, kind, params, storage_url, i))
             for i in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        log.warning("%d worker(s) exited with errors: %s", len(failed), failed)
