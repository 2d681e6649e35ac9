"""Where tasks run: a local pool of worker processes, or a Dask distributed cluster.

Both backends take a list of :class:`~hw.sweep.task.Task` and yield ``(task, result, reason)``
as tasks finish, in any order: ``result`` is what :func:`~hw.sweep.task.run_task` returned, or
``None`` with a one-line ``reason`` when the task could not be run. Each task is yielded once.
While nothing finishes they yield ``(None, None, None)`` about every :data:`TICK` seconds, so
that a progress line can move its clock.

:class:`LocalPool` starts ``jobs`` processes (``spawn``: a fresh interpreter, like a cluster
worker) and talks to each through a pipe, so it knows which task every process holds. A process
that dies (killed, out of memory) loses only that task, which goes to a new process; after
:data:`ATTEMPTS` deaths it is reported failed. It opens no socket.

:class:`DaskPool` submits every task to the scheduler at ``address``; the scheduler reschedules
the tasks of a worker that dies (up to Dask's ``distributed.scheduler.allowed-failures``, then
``KilledWorker``). Joining a cluster is the user's explicit ``--scheduler``; security (TLS) comes
from Dask's own configuration (``distributed.comm.tls.*``), see the README.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import re
import signal
import socket
import uuid
from collections import deque
from multiprocessing.connection import wait

from .task import reason_of, run_task

__all__ = ["LocalPool", "DaskPool", "PoolError", "ATTEMPTS"]

#: How often a task may lose its process before the local pool reports it failed.
ATTEMPTS = 3
#: Seconds between the idle ticks of :meth:`LocalPool.run` and :meth:`DaskPool.run`.
TICK = 1.0


class PoolError(Exception):
    """The pool cannot start (no Dask, scheduler unreachable); one line."""


def _worker_main(conn):
    """A pool process: run the tasks that arrive on ``conn`` until ``None`` or the pipe closes."""
    if hasattr(os, "setpgrp"):
        # Its own process group, so the client can end it together with the tools it started.
        os.setpgrp()
        # Ctrl-C reaches the client, which ends the group; the worker itself ignores it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        task, liberty_data = item
        try:
            message = ("done", run_task(task, liberty_data))
        except Exception as e:  # noqa: BLE001 - a bug in one task must not end the process
            message = ("error", reason_of(e))
        try:
            conn.send(message)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="lowbit-sweep-worker")
        self.process.start()
        child.close()
        self.task = None

    def stop(self, kill=False):
        """End the process (and, when ``kill``, everything in its process group)."""
        if kill and self.process.is_alive():
            try:
                if hasattr(os, "killpg"):
                    os.killpg(self.process.pid, signal.SIGTERM)
                else:
                    self.process.terminate()
            except (ProcessLookupError, PermissionError):
                pass
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalPool:
    """``jobs`` worker processes on this machine."""

    def __init__(self, jobs=2):
        self.jobs = max(1, int(jobs))
        self.workers = self.jobs
        self.inplace = True
        self.deaths = 0  # processes lost while holding a task (for the summary)
        self._ctx = multiprocessing.get_context("spawn")

    def describe(self):
        return f"local pool of {self.jobs} worker process{'es' if self.jobs > 1 else ''}"

    def run(self, tasks, liberty_data=None):
        queue = deque(tasks)
        attempts = {}
        workers = []
        clean = False
        try:
            while queue or any(w.task is not None for w in workers):
                idle = [w for w in workers if w.task is None]
                while queue and (idle or len(workers) < self.jobs):
                    worker = idle.pop() if idle else _Worker(self._ctx)
                    if worker not in workers:
                        workers.append(worker)
                    try:
                        worker.conn.send((queue[0], liberty_data))
                    except (BrokenPipeError, OSError):  # it died while idle: its task was none
                        workers.remove(worker)
                        worker.stop(kill=True)
                        continue
                    worker.task = queue.popleft()
                busy = [w for w in workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=TICK)
                if not ready:
                    yield None, None, None
                    continue
                for worker in busy:
                    task = worker.task
                    if worker.conn in ready or worker.conn.poll():
                        try:
                            kind, value = worker.conn.recv()
                        except (EOFError, OSError):
                            kind, value = "died", None
                    elif worker.process.sentinel in ready:
                        kind, value = "died", None
                    else:
                        continue
                    worker.task = None
                    if kind == "died":
                        self.deaths += 1
                        workers.remove(worker)
                        worker.stop(kill=True)
                        attempts[task.id] = attempts.get(task.id, 0) + 1
                        if attempts[task.id] < ATTEMPTS:
                            queue.appendleft(task)
                        else:
                            yield task, None, (f"its worker process died each of the {ATTEMPTS} times it ran "
                                               f"(exit code {worker.process.exitcode})")
                    elif kind == "done":
                        yield task, value, None
                    else:
                        yield task, None, value
            clean = True
        finally:
            for worker in workers:
                worker.stop(kill=not clean)


_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+(:\d{1,5})?$|^(tcp|tls)://\[[0-9a-fA-F:]+\](:\d{1,5})?$")


def check_address(address):
    """``address`` if it looks like ``tcp://HOST:PORT`` or ``tls://HOST:PORT``; else ``ValueError``."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ValueError(f"--scheduler: expected tcp://HOST:PORT or tls://HOST:PORT, not {address!r}")
    return address


def _probe(address, timeout):
    """Fail at once, with the reason, when nothing accepts connections at ``address`` (Dask's own
    connect would retry until its timeout)."""
    hostport = address.split("://", 1)[1]
    host, _, port = hostport.rpartition(":") if hostport.rfind(":") > hostport.rfind("]") else (hostport, "", "8786")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise PoolError(f"cannot reach the Dask scheduler at {address}: {e.strerror or e}") from None


class DaskPool:
    """The workers of the Dask scheduler at ``address`` (or of a given ``client``)."""

    def __init__(self, address=None, client=None, timeout=10):
        try:
            from distributed import Client
        except ImportError:
            raise PoolError("--scheduler needs Dask's distributed package: pip install 'lowbit[dask]'") from None
        self.inplace = False
        self.deaths = None  # the scheduler keeps that count
        self._own = client is None
        if client is None:
            _probe(check_address(address), timeout)
            try:
                client = Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise PoolError(f"cannot reach the Dask scheduler at {address}: {' '.join(str(e).split())}") from None
        self.client = client
        self.address = client.scheduler.address

    @property
    def workers(self):
        """Worker threads the scheduler has now (tasks wait for workers if it has none)."""
        return max(1, sum(self.client.nthreads().values()))

    def describe(self):
        info = self.client.nthreads()
        return f"Dask scheduler {self.address} ({len(info)} workers, {sum(info.values())} threads now)"

    def run(self, tasks, liberty_data=None):
        from distributed.scheduler import KilledWorker
        data = self.client.scatter(liberty_data, hash=True) if liberty_data is not None else None
        futures = {}
        finished = queue.Queue()  # done callbacks run on the client's event loop thread
        run_id = uuid.uuid4().hex[:8]
        for task in tasks:
            key = f"lowbit-{run_id}-{re.sub(r'[^A-Za-z0-9._+-]', '_', task.id)}"
            future = self.client.submit(run_task, task, data, key=key, pure=False, retries=1)
            futures[future] = task
            future.add_done_callback(finished.put)
        try:
            while futures:
                try:
                    future = finished.get(timeout=TICK)
                except queue.Empty:
                    yield None, None, None
                    continue
                task = futures.pop(future, None)
                if task is None:  # a callback fired twice: the first one counted
                    continue
                try:
                    result = future.result()
                except KilledWorker:
                    yield task, None, "its worker died each time it ran it (Dask KilledWorker)"
                except Exception as e:  # noqa: BLE001 - reported per task
                    yield task, None, reason_of(e)
                else:
                    yield task, result, None
                future.release()
        finally:
            if futures:
                self.client.cancel(list(futures))

    def close(self):
        if self._own:
            self.client.close()
