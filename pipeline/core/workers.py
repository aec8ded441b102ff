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
from functools import partial
from typing import Any, TypeVar

from .logs import configure_logging

log = logging.getLogger(__name__)
C = TypeVar("C")  # a worker's context
R = TypeVar("R")


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


# What the pool's initializer built in this worker process (empty in the parent): a pool
# hands a function only its item, so the worker's context waits here between items.
_context: dict[str, Any] = {}


def _init_worker(start: Callable[..., Any], args: tuple, verbose: bool) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    configure_logging(verbose, prefix=f"[pid {os.getpid()}] ")
    _context["value"] = start(*args)


def _in_context(fn: Callable[[Any, Any], R], item: Any) -> R:
    return fn(_context["value"], item)


@contextmanager
def worker_map(
    processes: int, start: Callable[..., C], args: tuple = ()
) -> Iterator[Callable[[Callable[[C, Any], R], Iterable], Iterator[R]]]:
    """Yield ``run(fn, items)``: an iterator of ``fn(context, item)`` in the order of ``items``,
    where ``context = start(*args)`` is built once per process (data loaded, trainer built).

    ``processes`` <= 1 runs here, lazily, one item at a time. Otherwise ``fn`` (a module-level
    function) runs in that many spawned processes (TensorFlow state must not be forked);
    leaving the block stops them, also on error or Ctrl-C.
    """
    if processes <= 1:
        context = start(*args)
        yield lambda fn, items: (fn(context, item) for item in items)
        return
    spawn = multiprocessing.get_context("spawn")
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)  # -v: the workers log as much
    with spawn.Pool(processes, initializer=_init_worker, initargs=(start, args, verbose)) as pool:

        def run(fn: Callable[[C, Any], R], items: Iterable) -> Iterator[R]:
            return pool.imap(partial(_in_context, fn), list(items))

        yield run
