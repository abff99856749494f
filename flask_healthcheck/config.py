"""The validation of every ``HEALTHCHECK_*`` key (listed, with its default,
in ``config_keys.py``): an app's config read once into :class:`Settings`."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.utils import ImportStringError, import_string

from .config_keys import KEYS, Key
from .endpoints import Endpoint, describe, validate_endpoints, validate_url
from .errors import ConfigurationError

logger = logging.getLogger("flask_healthcheck")


class _Defaults(Mapping[str, Any]):
    """Each key's default, read from its :class:`~.config_keys.Key` when
    looked up, so that one made from the machine (the run dir's, in the
    temp dir) is made on first use, not at import."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self._keys = {key.name: key for key in keys}

    def __getitem__(self, name: str) -> Any:
        return self._keys[name].default

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


#: Defaults set with ``app.config.setdefault`` in ``init_app``: one per key
#: of :data:`~.config_keys.KEYS`, where each key is described.
DEFAULTS: Mapping[str, Any] = _Defaults(KEYS)


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one app, read once in ``init_app``."""

    url: str
    #: ``HEALTHCHECK_SERVICES``: each a check named after the service.
    services: tuple[ServiceCheckOptions, ...]
    callable: Callable[..., Any] | None
    timeout: float
    cache_ttl: float
    show_details: bool | Callable[[Any], bool]
    failure_status: int
    warn_status: int
    interval: float
    #: Extra endpoints from ``HEALTHCHECK_ENDPOINTS``, in config order.
    endpoints: tuple[Endpoint, ...] = ()
    #: What health+json says about the service (``serviceId`` and so on).
    service_id: str | None = None
    version: str | None = None
    release_id: str | None = None
    description: str | None = None
    #: Seconds between reloads of the HTML page; 0 for none.
    html_refresh: int = 10
    #: Whether the app's ``before_request`` hooks run for the health URLs.
    run_app_hooks: bool = False
    #: Where the processes of one host elect the one that refreshes; ``None``
    #: for no election (each process refreshes on its own).
    run_dir: str | None = None
    #: False to run checks on the request thread, one after another.
    threads: bool = True


#: The longest time setting: the longest wait Python's threads can make.
MAX_SECONDS = threading.TIMEOUT_MAX


def _number(key: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{key} must be a number of seconds, got {describe(value)}."
        )
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if math.isnan(number) or number < 0 or (positive and number == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ConfigurationError(
            f"{key} must be a number of seconds {bound}, got {describe(value)}."
        )
    if number > MAX_SECONDS:  # Python's waits refuse more (292 years)
        raise ConfigurationError(
            f"{key} must be a number of seconds of at most {MAX_SECONDS:g},"
            f" got {describe(value)}."
        )
    return number


def validate_timeout(key: str, value: Any) -> float:
    """A per-check or default timeout: a number of seconds above 0."""
    return _number(key, value, positive=True)


def _status_code(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 599:
        raise ConfigurationError(
            f"{key} must be an HTTP status code from {low} to 599,"
            f" got {describe(value)}."
        )
    return value


def _optional_text(key: str, value: Any, example: str) -> str | None:
    """A text setting, or None.

    Numbers are taken as their text, because ``app.config.from_prefixed_env()``
    parses ``FLASK_HEALTHCHECK_RELEASE_ID=20250501`` or ``VERSION=2`` as
    numbers. An int gives back its text exactly; a float may not
    (``123e456`` is ``inf``, ``1.10`` is ``1.1``), so it is taken with a
    warning that says how to load the key as text.
    """
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        logger.warning(
            "%s is the number %r, not text: if it came from an environment"
            " variable through app.config.from_prefixed_env(), its text was"
            " parsed as a float and may have changed (123e456 becomes inf, 1.10"
            " becomes 1.1). Load it as text: set app.config[%r] from os.environ"
            " yourself, or give text settings a prefix of their own loaded with"
            " app.config.from_prefixed_env('HEALTH_TEXT', loads=str).",
            key,
            value,
            key,
        )
        return repr(value)
    raise ConfigurationError(
        f"{key} must be a non-empty string such as {example!r}, or None,"
        f" got {describe(value)}."
    )


def _refresh(key: str, value: Any) -> int:
    # A whole number: browsers ignore the fraction of a refresh interval.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{key} must be a whole number of seconds, 0 or more (0 turns"
            f" the reload off), such as 10, got {describe(value)}."
        )
    return value


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigurationError(f"{key} must be True or False, got {describe(value)}.")


def _run_dir(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and os.path.isabs(value):
        return value
    raise ConfigurationError(
        f"{key} must be an absolute path to a directory, such as"
        f" '/run/myapp/health', or None to let each process refresh on its"
        f" own, got {describe(value)}."
    )


@dataclass(frozen=True)
class ServiceCheckOptions:
    """One entry of ``HEALTHCHECK_SERVICES``: a service whose building is a
    check of the same name, and that check's options."""

    name: str
    tags: frozenset[str] = frozenset()
    #: Seconds; ``None`` means ``HEALTHCHECK_TIMEOUT``.
    timeout: float | None = None
    critical: bool = True


#: The keys of a ``HEALTHCHECK_SERVICES`` entry given as a dict.
SERVICE_KEYS = ("name", "tags", "timeout", "critical")


def validate_services(key: str, value: Any) -> tuple[ServiceCheckOptions, ...]:
    """A list of service names, or of dicts with a name and check options:
    ``["redis", {"name": "cursor_backend", "tags": ["ready"], "timeout": 2}]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"{key} must be a list of service names such as ['database'],"
            f" got {describe(value)}."
        )
    return tuple(
        _service_entry(f"{key}[{i}]", entry, value) for i, entry in enumerate(value)
    )


def _service_entry(key: str, entry: Any, entries: Any) -> ServiceCheckOptions:
    if isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in SERVICE_KEYS]
        if unknown:
            raise ConfigurationError(
                f"{key} has the unknown key {describe(unknown[0])}; the keys are"
                f" {', '.join(SERVICE_KEYS)} (only name is required)."
            )
        if "name" not in entry:
            raise ConfigurationError(
                f"{key} needs a 'name': the service to build, such as"
                f" {{'name': 'cursor_backend', 'tags': ['ready']}}."
            )
        name = _service_name(f"{key}['name']", entry["name"], entries)
        timeout = entry.get("timeout")
        if timeout is not None:
            timeout = validate_timeout(f"{key}['timeout']", timeout)
        critical = entry.get("critical", True)
        if not isinstance(critical, bool):
            raise ConfigurationError(
                f"{key}['critical'] must be True or False, got {describe(critical)}."
            )
        return ServiceCheckOptions(
            name,
            _tags(f"{key}['tags']", entry.get("tags", ())),
            timeout,
            critical,
        )
    if isinstance(entry, str):
        return ServiceCheckOptions(_service_name(key, entry, entries))
    raise ConfigurationError(
        f"{key} must be a service name such as 'database', or a dict such as"
        f" {{'name': 'database', 'tags': ['ready'], 'timeout': 2,"
        f" 'critical': True}}, got {describe(entry)} in {describe(entries)}."
    )


def _service_name(key: str, name: Any, entries: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigurationError(
            f"{key} must be a service name (Python identifiers such as"
            f" 'database'), got {describe(name)} in {describe(entries)}."
        )
    return name


def _tags(key: str, tags: Any) -> frozenset[str]:
    if isinstance(tags, (str, bytes, Mapping)) or not isinstance(
        tags, (list, tuple, set, frozenset)
    ):
        raise ConfigurationError(
            f"{key} must be a list of tags such as ['ready'], got {describe(tags)}."
        )
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ConfigurationError(
                f"{key} must be a list of non-empty strings such as ['ready'],"
                f" got {describe(tag)} in {describe(tags)}."
            )
    return frozenset(tags)


def validate_callable(key: str, value: Any) -> Callable[..., Any] | None:
    """A function, an import string such as ``'app.health:check'``, or None."""
    if value is None or callable(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            imported = import_string(value)
        except ImportStringError as e:
            raise ConfigurationError(
                f"{key} names {value!r}, which can't be imported: {e.exception}."
            ) from None
        if callable(imported):
            return imported  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"{key} must be a function returning True or False, an import string"
        f" such as 'myapp.health:check', or None, got {describe(value)}."
    )


def _show_details(key: str, value: Any) -> bool | Callable[[Any], bool]:
    if isinstance(value, bool) or callable(value):
        return value  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"{key} must be True, False or a function taking the request and"
        f" returning a bool, got {describe(value)}."
    )


def read_settings(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> Settings:
    """Validate an app's config; constructor arguments in ``overrides`` win."""

    def get(key: str) -> Any:
        return overrides[key] if overrides.get(key) is not None else config[key]

    return Settings(
        url=validate_url("HEALTHCHECK_URL", get("HEALTHCHECK_URL")),
        services=validate_services("HEALTHCHECK_SERVICES", get("HEALTHCHECK_SERVICES")),
        callable=validate_callable("HEALTHCHECK_CALLABLE", get("HEALTHCHECK_CALLABLE")),
        timeout=validate_timeout("HEALTHCHECK_TIMEOUT", config["HEALTHCHECK_TIMEOUT"]),
        cache_ttl=_number(
            "HEALTHCHECK_CACHE_TTL", config["HEALTHCHECK_CACHE_TTL"], positive=False
        ),
        show_details=_show_details(
            "HEALTHCHECK_SHOW_DETAILS", config["HEALTHCHECK_SHOW_DETAILS"]
        ),
        failure_status=_status_code(
            "HEALTHCHECK_FAILURE_STATUS", config["HEALTHCHECK_FAILURE_STATUS"], 400
        ),
        warn_status=_status_code(
            "HEALTHCHECK_WARN_STATUS", config["HEALTHCHECK_WARN_STATUS"], 200
        ),
        interval=_number(
            "HEALTHCHECK_INTERVAL", config["HEALTHCHECK_INTERVAL"], positive=False
        ),
        endpoints=validate_endpoints(
            "HEALTHCHECK_ENDPOINTS", config["HEALTHCHECK_ENDPOINTS"]
        ),
        service_id=_optional_text(
            "HEALTHCHECK_SERVICE_ID", config["HEALTHCHECK_SERVICE_ID"], "orders-api"
        ),
        version=_optional_text(
            "HEALTHCHECK_VERSION", config["HEALTHCHECK_VERSION"], "1.4.2"
        ),
        release_id=_optional_text(
            "HEALTHCHECK_RELEASE_ID", config["HEALTHCHECK_RELEASE_ID"], "1.4.2-9f3c2a1"
        ),
        description=_optional_text(
            "HEALTHCHECK_DESCRIPTION",
            config["HEALTHCHECK_DESCRIPTION"],
            "Order taking and payment",
        ),
        html_refresh=_refresh(
            "HEALTHCHECK_HTML_REFRESH", config["HEALTHCHECK_HTML_REFRESH"]
        ),
        run_app_hooks=_flag(
            "HEALTHCHECK_RUN_APP_HOOKS", config["HEALTHCHECK_RUN_APP_HOOKS"]
        ),
        run_dir=_run_dir("HEALTHCHECK_RUN_DIR", config["HEALTHCHECK_RUN_DIR"]),
        threads=_flag("HEALTHCHECK_THREADS", config["HEALTHCHECK_THREADS"]),
    )
