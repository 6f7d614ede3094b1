"""Where co-design tasks run: in this process, on a local process pool, or on a Ray cluster.

Every executor offers the same four calls, used by :mod:`hwq.codesign.pipeline`:

* ``start(shared)``: the inputs every task needs (workload, sensitivity table, base spec) are
  sent once: to each pool worker through its initializer, to Ray's object store by one
  ``ray.put`` (each Ray worker process fetches the object once and keeps it, by object id);
* ``submit(fn, *args) -> token``: run ``fn(shared, *args)`` somewhere (``fn`` a top-level function);
* ``next_done(timeout_s) -> [Outcome]``: the tasks that finished (value or one-line error);
* ``close(wait=True)`` (``wait`` False after an interrupt: running tasks are abandoned).

Failures never raise out of ``next_done``: an exception in ``fn`` or a worker that died (a
crashed process, a lost Ray node) becomes an :class:`Outcome` with ``ok`` False and the reason.
Ray retries a task whose worker died up to ``max_retries`` times (``@ray.remote(max_retries=...)``);
the process pool restarts itself after a crash and resubmits the tasks that were in flight, up to
the same number of times. Exceptions raised by ``fn`` itself are not retried (they are
deterministic).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hwq.errors import UsageError

#: Executor names of ``hwq codesign --executor``.
EXECUTORS: tuple[str, ...] = ("local", "ray")
#: Default retries of a task whose worker died.
DEFAULT_MAX_RETRIES = 2
#: Object store of a local Ray instance, bytes: the shared inputs are a few MB (ResNet-50's
#: workload and sensitivity table); Ray's default (30 % of RAM) would reserve GiBs of /dev/shm.
RAY_OBJECT_STORE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """One finished task: ``value`` when ``ok``, else ``error`` (one line)."""

    token: int
    ok: bool
    value: Any = None
    error: str = ""


def one_line(err: BaseException) -> str:
    """``Type: message`` of an exception on one line (tracebacks stay out of records)."""
    text = " ".join(str(err).split()) or repr(err)
    return f"{type(err).__name__}: {text}"[:500]


# ------------------------------------------------------------------ worker side
_SHARED: Any = None


def one_thread() -> None:
    """One compute thread in this worker process (BLAS/OpenMP pools and torch): the executor already runs
    one worker per core, and nested thread pools oversubscribe the cores (Ray sets OMP_NUM_THREADS=1 in
    its workers for the same reason)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        threadpool_limits(limits=1)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _set_shared(shared: Any) -> None:
    """Pool initializer: keep the shared inputs; one compute thread per worker (:func:`one_thread`)."""
    global _SHARED
    _SHARED = shared
    one_thread()


def _pool_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(_SHARED, *args)


_RAY_SHARED: dict[str, Any] = {}


def _ray_call(fn: Callable[..., Any], shared_ref: list[Any], *args: Any) -> Any:
    """Ray task body: the shared object (passed inside a list, so Ray does not resolve it per task)
    is fetched once per worker process and kept by its object id."""
    import ray

    ref = shared_ref[0]
    key = ref.hex()
    if key not in _RAY_SHARED:
        _RAY_SHARED.clear()  # one sweep's inputs at a time
        _RAY_SHARED[key] = ray.get(ref)
        one_thread()
    return fn(_RAY_SHARED[key], *args)


# ------------------------------------------------------------------ executors
class InlineExecutor:
    """Runs each task in this process when :meth:`next_done` is called (``--jobs 1``)."""

    name = "inline"

    def __init__(self) -> None:
        self.workers = 1
        self._queue: deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = deque()
        self._next = 0
        self._shared: Any = None

    def start(self, shared: Any) -> None:
        self._shared = shared

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        self._next += 1
        self._queue.append((self._next, fn, args))
        return self._next

    def in_flight(self) -> int:
        return len(self._queue)

    def next_done(self, timeout_s: float = 0.5) -> list[Outcome]:
        if not self._queue:
            return []
        token, fn, args = self._queue.popleft()
        try:
            return [Outcome(token, True, fn(self._shared, *args))]
        except Exception as err:  # noqa: BLE001 - a failing task becomes a record, never a crash
            return [Outcome(token, False, error=one_line(err))]

    def close(self, wait: bool = True) -> None:
        self._queue.clear()


class PoolExecutor:
    """A local process pool (spawn context: no forked torch thread pools) of ``workers`` processes."""

    name = "local"

    def __init__(self, workers: int, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.workers = workers
        self.max_retries = max_retries
        self._shared: Any = None
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, int] = {}
        self._tasks: dict[int, tuple[Callable[..., Any], tuple[Any, ...], int]] = {}
        self._lost: list[int] = []
        self._next = 0

    def start(self, shared: Any) -> None:
        if self._pool is not None and shared is self._shared:
            return  # already running with these inputs (a warm-up before a timed run)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._shared = shared
        self._new_pool()

    def _new_pool(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_set_shared,
                                         initargs=(self._shared,))

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        self._next += 1
        self._tasks[self._next] = (fn, args, 0)
        self._launch(self._next)
        return self._next

    def _launch(self, token: int) -> None:
        fn, args, _ = self._tasks[token]
        assert self._pool is not None, "start() was not called"
        try:
            self._futures[self._pool.submit(_pool_call, fn, args)] = token
        except BrokenProcessPool:  # a worker died since the last next_done: resubmitted there
            self._lost.append(token)

    def in_flight(self) -> int:
        return len(self._futures) + len(self._lost)

    def next_done(self, timeout_s: float = 0.5) -> list[Outcome]:
        if not self._futures and not self._lost:
            return []
        broken = bool(self._lost)
        done = set()
        if self._futures:
            done, _ = wait(list(self._futures), timeout=0 if broken else timeout_s, return_when=FIRST_COMPLETED)
        out: list[Outcome] = []
        for fut in done:
            token = self._futures.pop(fut)
            try:
                out.append(Outcome(token, True, fut.result()))
                self._tasks.pop(token, None)
            except BrokenProcessPool:
                broken = True
                self._futures[fut] = token  # handled below with the rest of the pool's tasks
            except Exception as err:  # noqa: BLE001
                out.append(Outcome(token, False, error=one_line(err)))
                self._tasks.pop(token, None)
        if broken:  # a worker died: every task of the pool is lost; restart it and resubmit
            lost = self._lost + list(self._futures.values())
            self._futures.clear()
            self._lost = []
            assert self._pool is not None
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._new_pool()
            for token in lost:
                fn, args, tries = self._tasks[token]
                if tries >= self.max_retries:
                    self._tasks.pop(token)
                    out.append(Outcome(token, False, error=f"worker process died {tries + 1} times "
                                                           f"(max_retries {self.max_retries})"))
                else:
                    self._tasks[token] = (fn, args, tries + 1)
                    self._launch(token)
        return out

    def close(self, wait: bool = True) -> None:
        """Stop the pool; ``wait`` False (an interrupted sweep) ends its worker processes at once."""
        if self._pool is not None:
            if not wait:
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()  # this pool's own workers, by process object
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Tasks on Ray: a local instance of ``workers`` CPUs, or the cluster at ``address``
    (``ray://HOST:PORT``, ``HOST:PORT`` or ``auto``; else ``RAY_ADDRESS`` when set).

    A Ray instance already initialised in this process (a test fixture, a notebook) is used as it
    is and left running; one this executor started is shut down by :meth:`close`.
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 object_store_bytes: int = RAY_OBJECT_STORE_BYTES) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs the ray package: .venv/bin/python -m pip install ray "
                             "(it is a dependency of hwq: rerun `make setup`)") from None
        self._ray = ray
        self.max_retries = max_retries
        self._owned = False
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address and "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").is_file():
            # Ray >= 2.5x: a cluster started by `ray start` checks a token (~/.ray/auth_token), and a driver
            # that joins it sends the token only in token mode (the mode is cached at import: refresh it)
            os.environ["RAY_AUTH_MODE"] = "token"
            try:
                from ray._private.authentication.authentication_token_setup import _enable_token_auth

                _enable_token_auth()
            except ImportError:  # another Ray version: the environment variable is what counts there
                pass
        t0 = time.perf_counter()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "log_to_driver": False, "configure_logging": True}
            try:
                if address:
                    ray.init(address=address, **kw)
                else:
                    # address "local": a new instance even when `ray start` left a cluster on this machine
                    ray.init(address="local", num_cpus=workers, object_store_memory=object_store_bytes, **kw)
            except Exception as err:  # noqa: BLE001 - a cluster that cannot be joined is a usage error
                raise UsageError(f"cannot start or join Ray ({'address ' + address if address else 'local'}): "
                                 f"{one_line(err)}") from None
            self._owned = True
        self.init_seconds = time.perf_counter() - t0
        self.workers = max(1, int(ray.cluster_resources().get("CPU", workers)))
        self.address = address or "local"
        self._remote = ray.remote(max_retries=max_retries, retry_exceptions=False, num_cpus=1)(_ray_call)
        self._refs: dict[Any, int] = {}
        self._next = 0
        self._shared: Any = None
        self._shared_ref: Any = None

    def start(self, shared: Any) -> None:
        if self._shared_ref is not None and shared is self._shared:
            return  # already in the object store
        self._shared = shared
        self._shared_ref = self._ray.put(shared)  # once: every task gets the reference, not a copy

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        self._next += 1
        self._refs[self._remote.remote(fn, [self._shared_ref], *args)] = self._next
        return self._next

    def in_flight(self) -> int:
        return len(self._refs)

    def next_done(self, timeout_s: float = 0.5) -> list[Outcome]:
        if not self._refs:
            return []
        ray = self._ray
        done, rest = ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        if done and rest:  # and whatever else has finished by now
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        out: list[Outcome] = []
        for ref in done:
            token = self._refs.pop(ref)
            try:
                out.append(Outcome(token, True, ray.get(ref)))
            except ray.exceptions.RayTaskError as err:  # fn raised: its own message
                out.append(Outcome(token, False, error=one_line(err.cause if err.cause is not None else err)))
            except Exception as err:  # noqa: BLE001 - worker crashed / node lost after max_retries
                out.append(Outcome(token, False, error=f"{one_line(err)} (after max_retries {self.max_retries})"))
        return out

    def close(self, wait: bool = True) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        self._refs.clear()
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(name: str, jobs: int, *, address: str | None = None,
                  max_retries: int = DEFAULT_MAX_RETRIES):
    """The executor ``hwq codesign --executor NAME --jobs N [--address A]`` asks for."""
    if name not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if address and name != "ray":
        raise UsageError("--address joins a Ray cluster; use it with --executor ray")
    if name == "ray":
        return RayExecutor(jobs, address, max_retries)
    return InlineExecutor() if jobs <= 1 else PoolExecutor(jobs, max_retries)
