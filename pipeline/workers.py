"""Run RNN work side by side in worker processes: tuning trials, training folds.

On a CPU, TensorFlow's intra-op threads barely speed up a small recurrent network (a second
thread gains a few percent; docs/benchmarks.md), while two single-threaded processes each
keep that speed: processes, not threads, use the cores.
Results never depend on timing: callers hand out fixed work and collect results in order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from . import configure_logging

log = logging.getLogger(__name__)


def threads_per_process(threads: int, processes: int) -> int:
    """``neural.threads`` if set, else the cores shared out between the processes."""
    return threads or max(1, (os.cpu_count() or 1) // max(1, processes))


def params_per_process(params, processes: int):
    """``params`` with ``neural.threads`` set to each of ``processes`` workers' share."""
    threads = threads_per_process(params.neural.threads, processes)
    return params.model_copy(update={"neural": params.neural.model_copy(update={"threads": threads})})


def _die_with_parent() -> None:
    # A SIGKILLed stage must not leave orphans training on (Linux; elsewhere they end when
    # their task does, as the pool's pipe is gone).
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _init_worker(initializer: Callable | None, initargs: tuple, verbose: bool) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    configure_logging(verbose, prefix=f"[pid {os.getpid()}] ")
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def worker_map(processes: int, initializer: Callable | None = None, initargs: tuple = ()):
    """Yield ``run(fn, items)``: an iterator of ``fn(item)`` in the order of ``items``.

    ``processes`` <= 1 runs here, lazily, one item at a time. Otherwise ``fn`` (a module-level
    function) runs in that many spawned processes (TensorFlow state must not be forked),
    each prepared once by ``initializer(*initargs)``; leaving the block stops them, also on
    error or Ctrl-C.
    """
    if processes <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield lambda fn, items: map(fn, items)
        return
    context = multiprocessing.get_context("spawn")
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)  # -v: the workers log as much
    with context.Pool(processes, initializer=_init_worker, initargs=(initializer, initargs, verbose)) as pool:

        def run(fn: Callable, items: Iterable) -> Iterator:
            return pool.imap(fn, list(items))

        yield run
