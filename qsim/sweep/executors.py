"""Where sweep points run: in this process, on a local process pool, or on a Dask cluster.

Each executor maps a top-level function over payloads and yields ``(index, result)`` as results
arrive, in whatever order they finish; the caller puts them back in order. Results do not depend
on the executor or the number of workers, because each point carries its own seed.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from qsim.errors import QsimError

EXECUTORS = ("serial", "process", "dask")


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
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:

        def map_unordered(fn: Callable, payloads: Sequence) -> Iterator[tuple[int, object]]:
            futures = {pool.submit(fn, payload): index for index, payload in enumerate(payloads)}
            for future in as_completed(futures):
                yield futures[future], future.result()

        yield map_unordered
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


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
