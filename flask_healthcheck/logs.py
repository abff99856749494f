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

import logging
import traceback

from .checks import CheckResult, Status
from .redact import MAX_SCAN, escape_controls, known_secrets, redact

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
    (:func:`~flask_healthcheck.redact.register_app_secrets`). Every part is
    cut to a bound before it is redacted, so a record costs at most a few
    milliseconds however long its exception message.
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
    """Redact ``record`` in place; see :class:`RedactingFilter`."""
    secrets = known_secrets()
    try:
        message = record.getMessage()
    except Exception:  # arguments that don't fit the message
        message = f"{record.msg!r} % {record.args!r}"
    record.msg = _clean(message, secrets)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        pieces = traceback.format_exception(record.exc_info[1])
        record.exc_text = "".join(_clean(piece, secrets) for piece in pieces).rstrip()
    elif record.exc_text:
        record.exc_text = _clean_lines(record.exc_text, secrets)
    record.exc_info = None
    if record.stack_info:
        record.stack_info = _clean_lines(record.stack_info, secrets)


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    return escape_controls(redact(text, secrets), keep_newlines=True)


def _clean_lines(text: str, secrets: tuple[str, ...]) -> str:
    """Redact a long block (a stack) piece by piece, each piece bounded."""
    if len(text) <= MAX_SCAN:
        return _clean(text, secrets)
    return "\n".join(_clean(line, secrets) for line in text.split("\n"))


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
    previous: Status | None,
    exc: BaseException | None = None,
) -> None:
    """Log a check's result against its previous status, once per change.

    A check that starts failing is a WARNING with the reason (and the
    traceback of ``exc``, redacted, when it raised); one that keeps failing
    is a DEBUG line per run; one that recovers is an INFO line. Going to or
    from ``warn`` is an INFO line. Passing again and again logs nothing.

    :param app_name: the name of the app the check belongs to.
    :param result: the check's latest result.
    :param previous: the check's status in the run before, or ``None`` when
        this is its first run.
    :param exc: the exception the check raised, if it raised.
    """
    name, status = result.name, result.status
    reason = result.error or "no reason given"
    if status == "fail":
        if previous == "fail":
            logger.debug(
                "Health check %r of app %r is still failing: %s", name, app_name, reason
            )
        else:
            logger.warning(
                "Health check %r of app %r started failing: %s",
                name,
                app_name,
                reason,
                exc_info=exc,
            )
    elif previous == "fail":
        logger.info("Health check %r of app %r recovered (%s).", name, app_name, status)
    elif status == "warn" and previous != "warn":
        logger.info("Health check %r of app %r warns: %s", name, app_name, reason)
    elif status == "pass" and previous == "warn":
        logger.info("Health check %r of app %r passes again.", name, app_name)
