"""One event loop per app for its async checks and factories.

Async clients keep their connections on the loop that made them: a
``redis.asyncio`` pool made at import, or in a factory on an earlier run,
fails with "Event loop is closed" on a loop made for each run. So every
async check and factory of an app runs on one loop that lives as long as
the app: it runs in a daemon thread of its own, the thread that runs a
check submits the coroutine and waits for it until the check's deadline
(then the coroutine is cancelled). Like a sync check's, that thread is kept
until the coroutine has really ended, so the runner does not start the
check again meanwhile: a coroutine that ignores its cancellation, or a loop
blocked by a check that never awaits, can't pile up copies of the check on
the loop. A forked child starts a loop of its own (its parent's thread is
not in the child), and the loop stops and closes when the app is garbage
collected: the loop is made in an empty context, so it holds nothing of the
app (a handle made in a check's context would hold the app's context).

What the loop itself would report to the ``asyncio`` logger (a task's
exception that nobody retrieved, a callback that raised) goes to the
``flask_healthcheck`` logger instead, which redacts every record: an
exception text that quotes a password never reaches a log unredacted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Coroutine
from typing import Any

from flask import Flask

logger = logging.getLogger("flask_healthcheck")

#: Seconds the closing loop gives its remaining tasks to end once cancelled.
CLOSE_SECONDS = 1.0

_lock = threading.Lock()
_loops: weakref.WeakKeyDictionary[Flask, AppLoop] = weakref.WeakKeyDictionary()


def loop_for(app: Flask) -> AppLoop:
    """The event loop of ``app``'s async checks, made at its first use."""
    with _lock:
        app_loop = _loops.get(app)
        if app_loop is None:
            app_loop = _loops[app] = AppLoop(f"healthcheck-loop-{app.name}")
            # The finalizer holds the loop, never the app.
            weakref.finalize(app, app_loop.close).atexit = False
        return app_loop


def _after_fork_in_child() -> None:
    """A lock held by another thread at the fork would stay held forever in
    the child; the loops themselves are replaced at their next use."""
    global _lock
    _lock = threading.Lock()
    for app_loop in list(_loops.values()):
        app_loop.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


async def _guarded(awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """Await ``awaitable``; its result or exception as a value.

    A ``SystemExit`` or ``KeyboardInterrupt`` escaping a task would stop
    the loop (asyncio re-raises them out of ``run_forever``), and any
    exception left in a task is one more thing to log: a task of ours
    always ends with a result.
    """
    try:
        return True, await awaitable
    except BaseException as e:  # everything a check raises fails the check
        return False, e


class AppLoop:
    """An event loop running in a daemon thread, started at its first use.

    :param name: the name of the loop's thread.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        #: Set by :meth:`close`: the loop's thread ends only then, whatever
        #: a coroutine does to the loop (``loop.stop()``).
        self._closing = threading.Event()
        #: What callers of :meth:`run` wait for; settled by the loop's thread
        #: when it closes, if the coroutine did not end by itself.
        self._waiting: set[concurrent.futures.Future[tuple[bool, Any]]] = set()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._waiting = set()
        closing, self._closing = self._closing, threading.Event()
        if closing.is_set():
            self._closing.set()

    @property
    def thread(self) -> threading.Thread | None:
        """The thread running the loop, if it was started in this process."""
        return self._thread if self._pid == os.getpid() else None

    def run(self, awaitable: Awaitable[Any], deadline: float | None) -> Any:
        """Run ``awaitable`` on the loop; its result, or raise what it raised.

        Called from any thread but the loop's own. The coroutine runs in a
        copy of the caller's context (context variables such as the check
        being run carry over).

        :param deadline: ``time.monotonic()`` after which the coroutine is
            cancelled and :class:`TimeoutError` raised once it has ended;
            None waits for it.
        """
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("the deadline passed before the coroutine began")
            loop = self._running_loop()
            if self._thread is threading.current_thread():
                raise RuntimeError(
                    "an async health check can't wait for another on its own event loop"
                )
        except BaseException:
            _close_awaitable(awaitable)
            raise
        done: concurrent.futures.Future[tuple[bool, Any]] = concurrent.futures.Future()
        tasks: list[asyncio.Task[tuple[bool, Any]]] = []

        def start() -> None:
            task = loop.create_task(_guarded(awaitable))
            tasks.append(task)
            task.add_done_callback(lambda t: _settle(t, done, awaitable))

        waiting = self._waiting
        waiting.add(done)
        try:
            try:
                loop.call_soon_threadsafe(start, context=contextvars.copy_context())
            except RuntimeError:  # closed meanwhile: the app is being dropped
                _close_awaitable(awaitable)
                raise RuntimeError("the app's event loop is closed") from None
            timeout = None
            if deadline is not None:
                timeout = max(0.0, deadline - time.monotonic())
            try:
                passed, value = done.result(timeout)
            except concurrent.futures.TimeoutError:
                with contextlib.suppress(RuntimeError):  # closed: done is settled
                    loop.call_soon_threadsafe(_cancel, tasks)
                # Kept, as a sync check's thread is, until the coroutine ends.
                done.exception()
                raise TimeoutError("the coroutine did not finish in time") from None
        finally:
            waiting.discard(done)
        if passed:
            return value
        raise value

    def close(self) -> None:
        """Stop the loop; its thread cancels what is left and closes it."""
        with self._lock:
            self._closed = True
            self._closing.set()
            loop, pid = self._loop, self._pid
            self._loop = None
        if loop is not None and pid == os.getpid():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # already closed
                pass

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started now if this process has none yet."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the app's event loop is closed")
            if self._loop is not None and self._pid == os.getpid():
                return self._loop
            # None yet, or the parent's: its thread did not survive the fork.
            loop = contextvars.Context().run(asyncio.new_event_loop)
            loop.set_exception_handler(_log_redacted)
            thread = threading.Thread(
                target=_serve,
                args=(loop, self._closing, self._waiting),
                name=self.name,
                daemon=True,
            )
            try:
                thread.start()
            except BaseException:
                loop.close()
                raise
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return loop


def _settle(
    task: asyncio.Task[tuple[bool, Any]],
    done: concurrent.futures.Future[tuple[bool, Any]],
    awaitable: Awaitable[Any],
) -> None:
    if task.cancelled():  # before it began: _guarded never ran
        _close_awaitable(awaitable)
        done.set_result((False, asyncio.CancelledError()))
    else:
        done.set_result(task.result())


def _cancel(tasks: list[asyncio.Task[tuple[bool, Any]]]) -> None:
    for task in tasks:
        task.cancel()


def _close_awaitable(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that will never run ("never awaited" otherwise)."""
    if isinstance(awaitable, Coroutine):
        awaitable.close()


def _serve(
    loop: asyncio.AbstractEventLoop,
    closing: threading.Event,
    waiting: set[concurrent.futures.Future[tuple[bool, Any]]],
) -> None:
    """The loop's thread: run until closed, then close the loop, and
    release whoever still waits for a coroutine that did not end."""
    asyncio.set_event_loop(loop)
    try:
        while not closing.is_set():
            try:
                loop.run_forever()  # returns on loop.stop(): ours, or a check's
            except BaseException:  # a callback's SystemExit must not end the loop
                logger.exception("A callback on the health checks' event loop raised.")
    finally:
        try:
            _shut_down(loop)
        finally:
            closed = RuntimeError("the app's event loop closed")
            for done in list(waiting):
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    done.set_result((False, closed))


def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left, give them a moment, and close the loop."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=CLOSE_SECONDS))
        loop.run_until_complete(
            asyncio.wait_for(loop.shutdown_asyncgens(), CLOSE_SECONDS)
        )
    except BaseException:
        logger.exception("Closing the health checks' event loop failed.")
    finally:
        loop.close()


def _log_redacted(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: asyncio's report, on our redacted logger."""
    lines = [str(context.get("message") or "Unhandled exception in event loop")]
    for key in sorted(context):
        if key not in ("message", "exception"):
            try:
                lines.append(f"{key}: {context[key]!r}")
            except Exception:  # a repr that raises
                lines.append(f"{key}: (its repr raised)")
    exception = context.get("exception")
    logger.error(
        "The health checks' event loop reports: %s",
        "\n".join(lines),
        exc_info=exception if isinstance(exception, BaseException) else None,
    )
