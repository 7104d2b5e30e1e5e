"""Run a CPU-bound Python call in a forked child process while the caller goes on.

Why: fastText (language ID) holds the GIL for a whole batch, so a thread cannot run it beside the builder's own
Python; a forked child can, on another core, and it inherits the loaded model and the texts without pickling them.
Only the result travels back (pickled, through a pipe).

Why ``os.fork`` and not ``multiprocessing``: a block is also built inside daemonic processes (datatrove's local
executor workers), where ``multiprocessing`` refuses to start children; a bare fork has no such rule. The child
runs one function and leaves with ``os._exit`` (no atexit handlers, no flushing of the parent's buffers).
Where ``os.fork`` does not exist, or ``SHARDSMITH_NO_FORK=1``, the call runs in the calling process, at once.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import Any


def can_fork() -> bool:
    return hasattr(os, "fork") and os.environ.get("SHARDSMITH_NO_FORK", "") not in ("1", "true")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# Read ends of the pipes of this process's children still running. A later child closes its copies of them: a copy
# held open elsewhere keeps a child whose result nobody reads from seeing EPIPE, and it would block writing forever.
_READ_ENDS: set[int] = set()


class Forked:
    """``fn(*args)`` computed in a forked child; ``result()`` waits for it and returns it (or raises, in this
    process, a ``RuntimeError`` naming the child's error). ``close()`` (also on garbage collection) ends a child
    whose result is no longer wanted. Without fork, ``fn`` runs inside the constructor.

    ``nice``: added to the child's scheduling niceness, for work off the caller's critical path: the child then
    takes the cores the caller leaves idle and yields them when the caller's own threads want them."""

    def __init__(self, fn: Callable[..., Any], *args: Any, nice: int = 0):
        self._pid = 0
        self._read = -1
        self._value: tuple[str, Any] | None = None
        if not can_fork():
            self._value = ("ok", fn(*args))
            return
        sys.stdout.flush()
        sys.stderr.flush()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, leave
            for fd in (read, *_READ_ENDS):
                os.close(fd)
            _READ_ENDS.clear()  # none of them is this process's (a child of its own must not close their numbers)
            _child(write, fn, args, nice)
        os.close(write)
        self._pid, self._read = pid, read
        _READ_ENDS.add(read)

    def result(self) -> Any:
        if self._value is None:
            _READ_ENDS.discard(self._read)
            with os.fdopen(self._read, "rb") as pipe:
                data = pipe.read()
            self._read = -1
            self._reap()
            self._value = pickle.loads(data) if data else ("error", "the child process died without a result")
        status, value = self._value
        if status != "ok":
            raise RuntimeError(f"forked {value}")
        return value

    def close(self) -> None:
        if self._read >= 0:
            _READ_ENDS.discard(self._read)
            os.close(self._read)  # the child's write fails (EPIPE) and it exits
            self._read = -1
        self._reap()

    def _reap(self) -> None:
        if self._pid:
            os.waitpid(self._pid, 0)
            self._pid = 0

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass


def _child(write: int, fn: Callable[..., Any], args: tuple, nice: int) -> None:
    code = 0
    try:
        try:
            if nice:
                os.nice(nice)
            payload = pickle.dumps(("ok", fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises it
            payload = pickle.dumps(("error", f"{getattr(fn, '__name__', fn)}: {type(err).__name__}: {err}"))
        with os.fdopen(write, "wb") as pipe:
            pipe.write(payload)
    except BaseException:  # noqa: BLE001 - the parent closed the pipe: nobody wants the result
        code = 1
    finally:
        os._exit(code)


def parts_for(cost: int, cost_per_part: int) -> int:
    """How many processes share a job of ``cost``: one per ``cost_per_part`` (a part must outweigh a fork and its
    result's trip back), at most one per usable core."""
    return max(1, min(usable_cpus(), cost // cost_per_part))


def forked_map(fn: Callable[[list], list], items: list, parts: int,
               weight: Callable[[Any], int] | None = None) -> list:
    """``fn(items)`` computed in ``parts`` contiguous slices at once: the first in this process, the others in forked
    children; the results concatenated in order. ``fn`` maps a list to a list of the same length. ``weight``: each
    item's cost (e.g. its length), so that the slices cost about the same; default: one per item."""
    if parts <= 1 or not can_fork() or len(items) < parts:
        return fn(items)
    bounds = _even_bounds([1] * len(items) if weight is None else [weight(x) for x in items], parts)
    children = [Forked(fn, items[bounds[k]: bounds[k + 1]]) for k in range(1, parts)]
    try:
        out = list(fn(items[: bounds[1]]))
        for child in children:
            out += child.result()
    finally:
        for child in children:
            child.close()
    return out


class ForkedMap:
    """``fn(items)`` started now in ``parts`` forked children, one contiguous slice each (sliced as in
    :func:`forked_map`); ``result()`` waits and concatenates in order. For work whose result is needed later while
    this process does something else (a block loads its tokenizer while its language filter's fastText runs).
    ``close()`` ends the children whose result is no longer wanted."""

    def __init__(self, fn: Callable[[list], list], items: list, parts: int,
                 weight: Callable[[Any], int] | None = None):
        parts = max(1, min(parts, len(items)))
        bounds = _even_bounds([1] * len(items) if weight is None else [weight(x) for x in items], parts)
        self._children = [Forked(fn, items[bounds[k]: bounds[k + 1]]) for k in range(parts)]

    def result(self) -> list:
        try:
            return [x for child in self._children for x in child.result()]
        finally:
            self.close()

    def close(self) -> None:
        for child in self._children:
            child.close()


def _even_bounds(costs: list[int], parts: int) -> list[int]:
    """Slice bounds (``parts + 1`` of them, from 0 to ``len(costs)``) cutting where the running cost passes each
    ``k / parts`` of the total."""
    total = sum(costs) or 1
    bounds, running, k = [0], 0, 1
    for i, c in enumerate(costs):
        running += c
        while k < parts and running * parts >= k * total:
            bounds.append(i + 1)
            k += 1
    bounds += [len(costs)] * (parts + 1 - len(bounds))
    return bounds


__all__ = ["Forked", "ForkedMap", "can_fork", "forked_map", "parts_for", "usable_cpus"]
