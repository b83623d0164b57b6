"""Where sweep points run: in this process, on a local process pool, or on a Dask cluster.

Each executor maps a top-level function over payloads and yields ``(index, result)`` as results
arrive, in whatever order they finish; the caller puts them back in order. Results do not depend
on the executor or the number of workers, because each point carries its own seed.

Workers never outlive the sweep: a pool worker exits as soon as the process that started it dies,
even by SIGKILL (otherwise it would sit idle for ever, holding the sweep's pipes). The worker
processes of a local Dask cluster do so by themselves: distributed ends each one when a pipe from
its parent closes.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from qsim.errors import QsimError

EXECUTORS = ("serial", "process", "dask")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def default_workers() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def executor(name: str, workers: int | None = None, scheduler: str | None = None):
    """Yield ``map_unordered(fn, payloads)`` for the named executor; shut it down on exit.

    Raises:
        QsimError: for an unknown executor, or ``dask`` when dask.distributed is not installed.
    """
    if name == "serial":
        yield _serial
    elif name == "process":
        yield from _process_pool(workers or default_workers())
    elif name == "dask":
        yield from _dask(workers or default_workers(), scheduler)
    else:
        raise QsimError(f"--executor: expected one of {', '.join(EXECUTORS)}, found {name!r}")


def _serial(fn: Callable, payloads: Sequence) -> Iterator[tuple[int, object]]:
    for index, payload in enumerate(payloads):
        yield index, fn(payload)


def _process_pool(workers: int):
    # fork starts workers in milliseconds with qsim already imported (PERFORMANCE.md: 2.0x on 2
    # cores against 1.75x with spawn); where there is no fork, the platform default is used.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    )
    try:

        def map_unordered(fn: Callable, payloads: Sequence) -> Iterator[tuple[int, object]]:
            futures = {pool.submit(fn, payload): index for index, payload in enumerate(payloads)}
            for future in as_completed(futures):
                yield futures[future], future.result()

        yield map_unordered
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit as soon as ``parent_pid``, the process that started it, has died.

    On Linux the kernel kills it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``): at once, with no thread,
    even in the middle of a long computation. Elsewhere a daemon thread polls the parent's pid.
    """
    if not _kernel_kills_orphans():
        watch_parent(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)


def watch_parent(parent_pid: int, interval_s: float = 0.2) -> None:
    """Start a daemon thread that ends this process once its parent is no longer ``parent_pid``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="qsim-watch-parent", daemon=True).start()


def _kernel_kills_orphans() -> bool:
    # The signal comes when the *thread* that forked this process ends: here the thread that runs
    # the sweep, which submits every point before it can end.
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _dask(workers: int, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise QsimError("--executor dask needs dask.distributed: pip install 'qsim[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(scheduler or cluster)
    try:

        def map_unordered(fn: Callable, payloads: Sequence) -> Iterator[tuple[int, object]]:
            futures = [client.submit(fn, payload, pure=False) for payload in payloads]
            index = {future.key: i for i, future in enumerate(futures)}
            for future, result in dask_completed(futures, with_results=True):
                yield index[future.key], result

        yield map_unordered
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
