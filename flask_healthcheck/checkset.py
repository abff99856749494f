"""An app's checks, validated: what the shared and the app's own
registrations add up to, and which of them a request selects.

The extension object's registry (shared by every app) and the app's own
are merged with the ready-made services and the checks the config names,
validated once per change (names unique, URLs distinct, every dependency
known), and then selected by tag or name. Running them is
:mod:`~flask_healthcheck.state`'s job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .checks import Check, callable_check
from .config import Settings
from .endpoints import Endpoint, check_name_clashes, check_url_clashes
from .errors import ConfigurationError
from .forks import AfterFork
from .format_registry import BUILT_IN, FormatRegistry, check_format_clashes
from .formats import Format
from .sections import Section, build_sections, check_section_clash
from .services import Service, check_dependencies, service_check


@dataclass
class Registry:
    """Checks, services, endpoints and formats, either shared by all apps or
    one app's own."""

    services: dict[str, Service] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    #: Formats added with ``add_format``, by media type.
    formats: dict[str, Format] = field(default_factory=dict)
    after_fork: list[AfterFork] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)
    #: Bumped on every change, so validation reruns only when needed.
    version: int = 0

    def add_service(self, service: Service) -> None:
        self.services[service.name] = service
        self.version += 1

    def add_check(self, check: Check) -> None:
        if check.name in self.checks:
            raise ConfigurationError(
                f"A check named {check.name!r} is already registered; pass"
                f" name='...' to register another one."
            )
        self.checks[check.name] = check
        self.version += 1

    def add_section(self, section: Section) -> None:
        check_section_clash(section, self.sections)
        self.sections[section.name] = section
        self.version += 1

    def add_endpoint(self, endpoint: Endpoint) -> None:
        check_url_clashes([*self.endpoints.values(), endpoint])
        self.endpoints[endpoint.url] = endpoint
        self.version += 1

    def add_format(self, format: Format) -> None:
        check_format_clashes(format, self.formats.values())
        self.formats[format.mimetype] = format
        self.version += 1


class CheckSet:
    """The checks, services, sections, endpoints and formats of one app,
    validated when first used after a registration changed them.

    :param settings: the app's settings, read in ``init_app``.
    :param shared: the registry of the extension object, serving every app.
    :param ready_made: services available by name without registration
        (:mod:`flask_healthcheck.contrib`'s); a registered one of the same
        name wins.
    """

    def __init__(
        self,
        settings: Settings,
        shared: Registry,
        ready_made: Mapping[str, Service],
    ) -> None:
        self.settings = settings
        self.shared = shared
        #: Services, checks and endpoints registered for this app only.
        self.own = Registry()
        self.ready_made = dict(ready_made)
        #: The checks of ``HEALTHCHECK_SERVICES`` and ``HEALTHCHECK_CALLABLE``,
        #: made here so that a callable that can't work fails in ``init_app``.
        self.option_checks = self._option_checks()
        self._validated: tuple[int, int] | None = None
        self._checks: tuple[Check, ...] = ()
        self._sections: tuple[Section, ...] = ()
        self._services: dict[str, Service] = {}
        self._component_types: dict[str, str] = {}
        self._formats: tuple[tuple[int, int], FormatRegistry] | None = None
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """A thread of the parent may have held the lock at the fork."""
        self._lock = threading.Lock()

    def services(self) -> dict[str, Service]:
        """Every service this app can inject: ready-made, shared, then own."""
        self._validate()
        return self._services

    def endpoints(self) -> list[Endpoint]:
        """The main endpoint, then the configured, shared and own extra ones."""
        return [
            Endpoint(self.settings.url, None, "HEALTHCHECK_URL"),
            *self.settings.endpoints,
            *self.shared.endpoints.values(),
            *self.own.endpoints.values(),
        ]

    def formats(self) -> FormatRegistry:
        """The formats this app answers in: the built-in ones, with those
        added to the extension, then to this app, each in the place of a
        built-in one of its media type (see ``add_format``)."""
        versions = (self.shared.version, self.own.version)
        if self._formats is None or self._formats[0] != versions:
            added = [*self.shared.formats.values(), *self.own.formats.values()]
            self._formats = (versions, BUILT_IN.with_formats(added))
        return self._formats[1]

    def check_clashes(
        self, *, endpoint: Endpoint | None = None, check: Check | None = None
    ) -> None:
        """Raise :class:`ConfigurationError` if two URLs would mean one thing,
        or two checks have one name, with ``endpoint`` or ``check`` added.

        Called by ``init_app`` and on registration, so a clash fails at
        start-up; checks are validated once more at the first run.
        """
        endpoints = self.endpoints()
        if endpoint is not None:
            endpoints.append(endpoint)
        check_url_clashes(endpoints)
        checks = [
            *self.option_checks,
            *self.shared.checks.values(),
            *self.own.checks.values(),
        ]
        if check is not None:
            checks.append(check)
        check_name_clashes(endpoints, self._unique(checks))

    def checks(self) -> tuple[Check, ...]:
        """Every check of this app, validated; raises ``ConfigurationError``."""
        self._validate()
        return self._checks

    def sections(self) -> tuple[Section, ...]:
        """Every section of this app (``add_section``), validated; raises
        ``ConfigurationError`` as :meth:`checks` does."""
        self._validate()
        return self._sections

    def component_types(self) -> dict[str, str]:
        """health+json's ``componentType`` by check name, for checks with one,
        as of the last :meth:`checks` that validated (empty before that): a
        response about a configuration error still renders."""
        return self._component_types

    def _validate(self) -> None:
        versions = (self.shared.version, self.own.version)
        if self._validated == versions:
            return
        with self._lock:
            services = {
                **self.ready_made,
                **self.shared.services,
                **self.own.services,
            }
            self._services = services
            self._checks = self._build_checks(services)
            self._sections = build_sections(
                self.shared.sections, self.own.sections, services
            )
            self._component_types = {
                c.name: c.component_type for c in self._checks if c.component_type
            }
            self._validated = versions

    def _option_checks(self) -> tuple[Check, ...]:
        checks = [service_check(name) for name in self.settings.services]
        if self.settings.callable is not None:
            checks.append(callable_check(self.settings.callable))
        return tuple(checks)

    def _unique(self, checks: Iterable[Check]) -> dict[str, Check]:
        """``checks`` by name; raises :class:`ConfigurationError` for a name
        taken twice."""
        unique: dict[str, Check] = {}
        for check in checks:
            if check.name in unique:
                raise ConfigurationError(
                    f"A check named {check.name!r} is already registered (each"
                    f" service in HEALTHCHECK_SERVICES is a check of that name, and"
                    f" HEALTHCHECK_CALLABLE is one more); pass name='...' to"
                    f" register another one."
                )
            unique[check.name] = check
        return unique

    def _build_checks(self, services: dict[str, Service]) -> tuple[Check, ...]:
        checks = self._unique(
            (
                *self.option_checks,
                *self.shared.checks.values(),
                *self.own.checks.values(),
            )
        )
        check_name_clashes(self.endpoints(), checks)
        for check in checks.values():
            check_dependencies(f"check {check.name!r}", check.parameters, services)
        for name, service in services.items():
            check_dependencies(f"service {name!r}", service.parameters, services, name)
        return tuple(checks.values())

    def known_tags(self) -> frozenset[str]:
        """Every tag an endpoint declares or a check carries."""
        tags = {tag for check in self.checks() for tag in check.tags}
        for endpoint in self.endpoints():
            tags.update(endpoint.tags or ())
        return frozenset(tags)

    def check_tags(self, tags: Iterable[str]) -> None:
        """Raise :class:`ConfigurationError` for a tag that no endpoint
        declares and no check carries: a typo, not an empty selection.

        A tag an endpoint declares is valid without checks: a liveness
        probe with none means "the process answers".
        """
        known = self.known_tags()
        unknown = sorted(set(tags) - known)
        if unknown:
            names = ", ".join(map(repr, unknown))
            plural = "s" if len(unknown) > 1 else ""
            raise ConfigurationError(
                f"No endpoint or check has the tag{plural} {names}; known tags:"
                f" {', '.join(map(repr, sorted(known))) or 'none'}."
            )

    def select(
        self, *, tags: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> tuple[Check, ...]:
        """The checks carrying any of ``tags`` (all if None), less ``exclude``.

        Raises :class:`ConfigurationError` for a tag that no endpoint declares
        and no check carries (see :meth:`check_tags`).
        """
        if tags is None and not exclude:  # the main URL's every probe
            return self.checks()
        if tags is not None:
            tags = tuple(tags)
            self.check_tags(tags)
        wanted = None if tags is None else frozenset(tags)
        left_out = frozenset(exclude)
        return tuple(
            check
            for check in self.checks()
            if check.name not in left_out and (wanted is None or check.tags & wanted)
        )
