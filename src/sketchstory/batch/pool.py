"""Workers that take one item at a time, on Ray actors or in this process, and a retry loop over them.

A worker method never raises to the pool: :meth:`Worker.call` turns an exception into a
:class:`Failure` (message and exit code), because exceptions with custom constructors (such as
``StoryError``) do not survive Ray's pickling intact. Both pools run the very same worker code, so
a story renders to the same pixels with or without Ray.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sketchstory.errors import EXIT_INPUT, exit_code


class ClusterError(ValueError):
    """Workers cannot run as asked (no Ray, no cluster, no room, none started); the message says what to do."""


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed, in plain data that crosses process and machine boundaries."""

    message: str
    code: int | None  # the exit code `sketchstory generate` gives this error; None: unexpected (a bug, or a crash)
    details: str | None = None  # the traceback of an unexpected error

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        code = exit_code(error)
        return cls(f"{type(error).__name__}: {error}", code, None if code is not None else traceback.format_exc())


class Worker:
    """Base of the workers: caps torch's CPU threads to the worker's share and names itself."""

    def __init__(self, threads: int | None) -> None:
        if threads is not None:
            import torch

            # torch starts one thread per core of the machine in every process: N workers on N
            # cores would each run N threads and thrash the caches (oversubscription), slower than
            # one worker. So a worker uses as many threads as the CPUs it asked Ray for.
            torch.set_num_threads(threads)

    def ready(self) -> str:
        """Where this worker runs (host:pid); answering also tells the pool it has started."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def call(self, method: str, item: Any) -> Any:
        """``self.method(item)``, or the :class:`Failure` it raised."""
        try:
            return getattr(self, method)(item)
        except Exception as error:  # reported to the driver, which retries or records it
            return Failure.of(error)


@dataclass(frozen=True)
class Attempt:
    tag: int  # which submitted item
    value: Any  # the method's result, or a Failure
    seconds: float
    worker: str


class Pool(Protocol):
    description: str  # where the work runs, for the report

    def submit(self, tag: int, item: Any) -> None: ...

    def next(self) -> Attempt:
        """Wait for any submitted item's attempt to finish."""
        ...

    def __len__(self) -> int:
        """Items submitted and not yet returned by :meth:`next`."""
        ...


class LocalPool:
    """One worker in this process: items run one after another, when :meth:`next` is called."""

    def __init__(self, worker: Worker, method: str) -> None:
        self.worker, self.method = worker, method
        self.queue: deque[tuple[int, Any]] = deque()
        self.description = "this process (no Ray)"
        self.name = worker.ready()

    def submit(self, tag: int, item: Any) -> None:
        self.queue.append((tag, item))

    def __len__(self) -> int:
        return len(self.queue)

    def next(self) -> Attempt:
        tag, item = self.queue.popleft()
        start = time.perf_counter()
        value = self.worker.call(self.method, item)
        return Attempt(tag, value, time.perf_counter() - start, self.name)


_STARTING = object()  # in RayPool.running: the ref of an actor's ``ready`` call, not of an item


class RayPool:
    """Ray actors, each given one item at a time as it becomes free (so slow items never block fast ones).

    An actor whose process dies (killed, out of memory, node lost) fails its item, which the retry
    loop may resubmit, and is replaced by a new actor.
    """

    def __init__(self, make: Callable[[], Any], size: int, method: str, description: str) -> None:
        import ray

        self.ray, self.make, self.method, self.description = ray, make, method, description
        self.queue: deque[tuple[int, Any]] = deque()
        self.idle: list[tuple[Any, str]] = []  # (actor, its host:pid)
        # ref -> (actor, host:pid, (tag, item) or _STARTING, start time)
        self.running: dict[Any, tuple[Any, str, Any, float]] = {}
        self.start_errors: list[str] = []
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        actor = self.make()
        self.running[actor.ready.remote()] = (actor, "", _STARTING, 0.0)

    def submit(self, tag: int, item: Any) -> None:
        self.queue.append((tag, item))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.idle and self.queue:
            actor, name = self.idle.pop()
            work = self.queue.popleft()
            ref = actor.call.remote(self.method, work[1])
            self.running[ref] = (actor, name, work, time.perf_counter())

    def __len__(self) -> int:
        return len(self.queue) + sum(work is not _STARTING for _, _, work, _ in self.running.values())

    def next(self) -> Attempt:
        from ray.exceptions import RayActorError, RayError

        while True:
            if not self.running:
                raise ClusterError("no Ray worker could start: " + "; ".join(self.start_errors[-3:]))
            [ref], _ = self.ray.wait(list(self.running), num_returns=1)
            actor, name, work, start = self.running.pop(ref)
            alive = True
            try:
                value = self.ray.get(ref)
            except RayActorError as error:
                alive = False
                value = Failure(f"the worker process {name} died (killed, out of memory, or its node was lost): "
                                f"{error}", None)
            except RayError as error:  # the call itself could not run or return (e.g. unpicklable data)
                value = Failure(f"{type(error).__name__}: {error}", None)
            if work is _STARTING:
                if isinstance(value, Failure):  # its constructor failed: another would fail alike
                    self.start_errors.append(value.message)
                else:
                    self.idle.append((actor, value))
                    self._dispatch()
                continue
            if alive:
                self.idle.append((actor, name))
            else:
                self._start()  # a new worker takes the dead one's place
            self._dispatch()
            return Attempt(work[0], value, time.perf_counter() - start, name)

    def close(self) -> None:
        for actor in [actor for actor, _ in self.idle] + [entry[0] for entry in self.running.values()]:
            self.ray.kill(actor)


@dataclass(frozen=True)
class Outcome:
    tag: int
    value: Any  # the last attempt's result, or its Failure
    attempts: int
    seconds: float  # all attempts together
    worker: str  # where the last attempt ran

    @property
    def failure(self) -> Failure | None:
        return self.value if isinstance(self.value, Failure) else None


def run_with_retries(pool: Pool, items: Sequence[tuple[int, Any]], retries: int) -> Iterator[Outcome]:
    """Each ``(tag, item)``'s final outcome, as they finish; a failed item is tried up to ``retries`` more times,
    unless it failed on bad input (exit code 2), which fails the same way every time."""
    attempts: dict[int, int] = {}
    seconds: dict[int, float] = {}
    work = dict(items)
    for tag, item in items:
        pool.submit(tag, item)
    while len(pool):
        attempt = pool.next()
        tag = attempt.tag
        attempts[tag] = attempts.get(tag, 0) + 1
        seconds[tag] = seconds.get(tag, 0.0) + attempt.seconds
        failure = attempt.value if isinstance(attempt.value, Failure) else None
        if failure is not None and failure.code != EXIT_INPUT and attempts[tag] <= retries:
            pool.submit(tag, work[tag])
            continue
        yield Outcome(tag, attempt.value, attempts[tag], seconds[tag], attempt.worker)
