"""What the ``flask_healthcheck`` logger lets through: redacted text only.

Importing this module (``import flask_healthcheck`` does) puts a
:class:`RedactingFilter` on the ``flask_healthcheck`` logger, so every
record the extension emits is redacted before any handler sees it: the
message, its arguments, the traceback and the stack. Handlers of other
loggers that may quote the same exceptions (a server's error log) can use
the same filter::

    import logging
    from flask_healthcheck import RedactingFilter

    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.addFilter(RedactingFilter())
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections import deque
from collections.abc import Callable

from .checks import CheckResult, Status
from .redact import MAX_SCAN, escape_controls, redact
from .threads import allocate_lock

logger = logging.getLogger("flask_healthcheck")

#: Set on a record once redacted, so a second filter on its way (the
#: logger's, then a handler's) costs nothing.
_REDACTED = "_flask_healthcheck_redacted"
#: What a record says when even redacting it failed: nothing of the original.
_UNREDACTABLE = "A log record was dropped: redacting it failed."


class RedactingFilter(logging.Filter):
    """Rewrites a record into redacted text; never drops one.

    The message is formatted with its arguments and redacted; the
    traceback (``exc_info``) and ``stack_info`` are formatted and redacted
    into ``exc_text`` and ``stack_info``, and ``exc_info`` is cleared, so a
    handler or formatter can't format the original exception again. Control
    characters other than newlines and tabs are shown as escapes.

    The secrets blanked literally are those of the current app's config and
    of every app set up with ``HealthCheck.init_app``
    (:func:`~flask_healthcheck.app_secrets.register_app_secrets`). Every part is
    cut to a bound before it is redacted, so a record costs at most a few
    milliseconds however long its exception message.

    .. versionadded:: 0.1.0
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED, False):
            return True
        try:
            redact_record(record)
        except Exception:
            record.msg, record.args = _UNREDACTABLE, None
            record.exc_info = record.exc_text = record.stack_info = None
        setattr(record, _REDACTED, True)
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place; see :class:`RedactingFilter`. Every
    app's known secrets are blanked by :func:`~.redact.redact` itself."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that don't fit the message
        message = f"{record.msg!r} % {record.args!r}"
    record.msg = _clean(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        pieces = traceback.format_exception(record.exc_info[1])
        record.exc_text = "".join(_clean(piece) for piece in pieces).rstrip()
    elif record.exc_text:
        record.exc_text = _clean_lines(record.exc_text)
    record.exc_info = None
    if record.stack_info:
        record.stack_info = _clean_lines(record.stack_info)


def _clean(text: str) -> str:
    return escape_controls(redact(text), keep_newlines=True)


def _clean_lines(text: str) -> str:
    """Redact a long block (a stack) piece by piece, each piece bounded."""
    if len(text) <= MAX_SCAN:
        return _clean(text)
    return "\n".join(_clean(line) for line in text.split("\n"))


def _install() -> None:
    """Put one :class:`RedactingFilter` on the package's logger."""
    for existing in logger.filters:
        if type(existing).__qualname__ == RedactingFilter.__qualname__:
            return
    logger.addFilter(RedactingFilter())


_install()


def log_transition(
    app_name: str,
    result: CheckResult,
    previous: CheckResult | Status | None,
    exc: BaseException | None = None,
) -> None:
    """Log a check's result against its previous one, once per change.

    A check that starts failing is a WARNING with the reason (and the
    traceback of ``exc``, redacted, when it raised); so is one that goes
    on failing for another reason (reasons that differ only in their
    numbers, such as durations, are the same), and one that recovers: an
    operator who sees the failure sees its end. One that keeps failing for
    the same reason is a DEBUG line per run. Going to or from ``warn`` is
    an INFO line. Passing again and again logs nothing.

    :param app_name: the name of the app the check belongs to.
    :param result: the check's latest result.
    :param previous: the check's result in the run before (or only its
        status), or ``None`` when this is its first run.
    :param exc: the exception the check raised, if it raised.
    """
    if isinstance(previous, CheckResult):
        before: Status | None = previous.status
        reason_before = previous.error or "no reason given"
    else:
        before, reason_before = previous, None
    name, status = result.name, result.status
    reason = result.error or "no reason given"
    if status == "fail":
        if before != "fail":
            logger.warning(
                "Health check %r of app %r started failing: %s",
                name,
                app_name,
                reason,
                exc_info=exc,
            )
        elif reason_before is not None and _gist(reason) != _gist(reason_before):
            logger.warning(
                "Health check %r of app %r is failing for another reason: %s (was: %s)",
                name,
                app_name,
                reason,
                reason_before,
                exc_info=exc,
            )
        else:
            logger.debug(
                "Health check %r of app %r is still failing: %s", name, app_name, reason
            )
    elif before == "fail":
        logger.warning(
            "Health check %r of app %r recovered (%s).", name, app_name, status
        )
    elif status == "warn" and before != "warn":
        logger.info("Health check %r of app %r warns: %s", name, app_name, reason)
    elif status == "pass" and before == "warn":
        logger.info("Health check %r of app %r passes again.", name, app_name)


def passes_logged() -> bool:
    """Whether :func:`log_passed` lines are wanted: the logger lets DEBUG
    through. Asked before a line is even queued, so that with DEBUG off
    (the usual) a passing check costs nothing more."""
    return logger.isEnabledFor(logging.DEBUG)


def log_passed(app_name: str, result: CheckResult) -> None:
    """A DEBUG line for a check that passed, once per run of it (a result
    reused from the cache is no run), as py-healthcheck logs one."""
    logger.debug(
        "Health check %r of app %r passed in %.1f ms.",
        result.name,
        app_name,
        result.duration * 1000,
    )


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _gist(reason: str) -> str:
    """A failure reason without its numbers: "still running after 3.1 s"
    and "after 4.2 s" are one reason, not a change per run."""
    return _NUMBER.sub("#", reason[:MAX_SCAN])


# -- writing ------------------------------------------------------------------

#: Seconds a run's thread waits for another thread that is writing log
#: lines (its own among them) before it returns without: a handler hangs.
WRITE_WAIT_SECONDS = 1.0

#: Lines kept waiting at the most; the oldest are dropped past that.
MAX_PENDING_LINES = 10_000

LogLine = Callable[[], None]


class LogLines:
    """The log lines one app's results cause, written in the order they
    were recorded, outside the runner's lock.

    The thread that asked for a run writes them before it returns (the
    request's, the refresher's, ``flask health``'s), so a failing check's
    WARNING lands in the log of the test or the request that caused it,
    not later from another thread. Lines recorded while no run is under way
    (a check that finished after its timeout) are written by whoever
    :meth:`put` tells to: the caller queues :meth:`write` for delivery.
    """

    def __init__(self) -> None:
        # Operating system locks, also under gevent: lines are put from the
        # checks' threads under the runner's lock.
        self._lock = allocate_lock()
        #: Held by the one thread writing, so lines come out in order.
        self._writing = allocate_lock()
        self._pending: deque[LogLine] = deque()
        #: Runs under way, each of which writes the lines before it returns.
        self._runs = 0

    def begin(self) -> None:
        """A run starts: the lines recorded meanwhile are its to write."""
        with self._lock:
            self._runs += 1

    def end(self) -> None:
        """A run ends: write what it recorded (and anything older)."""
        with self._lock:
            self._runs -= 1
        self.write()

    def put(self, lines: list[LogLine]) -> bool:
        """Queue ``lines`` (under the runner's lock: never blocks); True if
        no run is under way to write them."""
        with self._lock:
            self._pending.extend(lines)
            dropped = len(self._pending) - MAX_PENDING_LINES
            for _ in range(max(dropped, 0)):
                self._pending.popleft()
            return self._runs == 0

    def write_late(self) -> None:
        """Write the lines no run will: a delivery for the signal thread."""
        self.write()

    def write(self, timeout: float = WRITE_WAIT_SECONDS) -> bool:
        """Write every line queued so far, one thread at a time; False if
        another thread was still writing after ``timeout`` seconds."""
        while self._pending:
            if not self._writing.acquire(timeout=timeout):
                return False
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            break
                        line = self._pending.popleft()
                    try:
                        line()
                    except Exception:  # a filter or handler that raises
                        with contextlib.suppress(Exception):  # and again
                            logger.exception("Writing a health log line failed.")
                    del line  # it may hold an exception, and so the app
            finally:
                self._writing.release()
        return True
