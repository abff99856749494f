"""``<url>/openapi.json``: an OpenAPI 3.1 document of the health URLs.

Built from what the app really serves (its main URL, every extra endpoint,
added before or after ``init_app``, the formats on offer, the configured
status codes), so Swagger UI, an API gateway or openapi-generator see the
URLs as they are, not as the docs say they usually are.

Check names are per-check information: like every other format, the
document lists them (as the enum of ``{check}``, ``?exclude=`` and
``?check=``) only when ``HEALTHCHECK_SHOW_DETAILS`` allows. A published
API description is read by more people than a health probe is, and a
list of an app's dependencies is a map for an attacker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any
from weakref import WeakKeyDictionary

from flask import Response, request

from .config import Settings
from .endpoints import HISTORY, OPENAPI, PAGE_ASSETS, RESERVED_NAMES, Endpoint
from .errors import ConfigurationError
from .formats import Format, service_fields
from .openapi_components import Responses, ref
from .page_assets import ASSETS, COLOURS
from .state import HealthCheckState

try:
    #: The document's version when ``HEALTHCHECK_VERSION`` is not set: the
    #: document describes the extension's URLs, which change with it.
    EXTENSION_VERSION = package_version("flask-healthchecks")
except PackageNotFoundError:  # run from a source tree that is not installed
    EXTENSION_VERSION = "0"

#: Documents kept per app: one per combination of details and script root
#: seen lately. The script root may come from a proxy's header, so the
#: cache is bounded rather than keyed by every value a client sends.
MAX_CACHED = 8

_cache: WeakKeyDictionary[HealthCheckState, dict[tuple[Any, ...], str]] = (
    WeakKeyDictionary()
)


def offered_formats(state: HealthCheckState) -> Sequence[Format]:
    """The formats the health URLs answer in: the app's registry's."""
    return tuple(state.formats().formats.values())


def openapi_response(
    state: HealthCheckState, details: bool, headers: Mapping[str, str]
) -> Response:
    """``<url>/openapi.json``: JSON whatever the ``Accept``; runs no check."""
    text = openapi_json(state, details=details, script_root=request.script_root)
    return Response(text, mimetype="application/json", headers=dict(headers))


def openapi_json(state: HealthCheckState, *, details: bool, script_root: str) -> str:
    """The document for ``state``'s app as JSON text, cached per app.

    The cache key holds everything the document is made of that can change
    while the app runs: the registries' versions (bumped by ``add_check``,
    ``add_endpoint`` and ``add_format``), whether details show, and the
    script root; the settings are fixed at ``init_app``.
    """
    key = (state.shared.version, state.own.version, details, script_root)
    documents = _cache.setdefault(state, {})
    text = documents.get(key)
    if text is None:
        names = check_names(state) if details else None
        document = build_document(
            state.settings,
            state.endpoints(),
            offered_formats(state),
            names=names,
            history_results=state.history.max_results,
            script_root=script_root,
        )
        text = json.dumps(document)
        if len(documents) >= MAX_CACHED:
            documents.clear()
        documents[key] = text
    return text


def check_names(state: HealthCheckState) -> dict[str | None, list[str]] | None:
    """The names of the checks each endpoint's ``{check}`` accepts, by the
    endpoint's URL (``None`` for every check of the app); None if the
    configuration is wrong (the document then lists no names)."""
    try:
        names: dict[str | None, list[str]] = {
            None: [check.name for check in state.checks()]
        }
        for endpoint in state.endpoints():
            selected = state.select(tags=endpoint.tags)
            names[endpoint.url] = [check.name for check in selected]
    except ConfigurationError:
        return None
    return names


def build_document(
    settings: Settings,
    endpoints: Sequence[Endpoint],
    offered: Sequence[Format],
    *,
    names: Mapping[str | None, Sequence[str]] | None,
    history_results: int,
    script_root: str,
) -> dict[str, Any]:
    """The OpenAPI document as JSON-ready data.

    :param endpoints: the main endpoint first, then the extra ones.
    :param names: check names by endpoint URL (``None``: the app's), or
        None to list no names (details not allowed).
    :param history_results: the most results ``?limit=`` may ask for.
    """
    builder = _Paths(settings, offered, names)
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.update(builder.endpoint_paths(endpoint))
    main = endpoints[0]
    base = main.url.rstrip("/")
    paths[_path(f"{base}/{HISTORY}")] = builder.history_path(history_results)
    paths[_path(f"{base}/{OPENAPI}")] = builder.openapi_path()
    for asset in PAGE_ASSETS:
        paths[_path(f"{base}/{asset}")] = builder.asset_path(asset)
    return {
        "openapi": "3.1.0",
        "info": _info(settings),
        "servers": [{"url": _path(script_root) or "/"}],
        "tags": [
            {"name": "health", "description": "Run the checks and report."},
            {"name": "history", "description": "Recent results; runs no check."},
            {"name": "meta", "description": "This document, the page's assets."},
        ],
        "paths": paths,
        "components": builder.components(),
    }


def _info(settings: Settings) -> dict[str, Any]:
    """The title and version: the service's own when configured, redacted
    as health+json shows them."""
    fields = service_fields(settings)
    service = fields.get("serviceId")
    info: dict[str, Any] = {
        "title": f"{service} health" if service else "Health checks",
        "version": fields.get("version") or EXTENSION_VERSION,
    }
    description = (
        "The health endpoints of this app, served by flask-healthcheck: each"
        " runs its checks and answers in the format asked for by `Accept` or"
        " `?format=`."
    )
    if fields.get("description"):
        description = f"{fields['description']}\n\n{description}"
    info["description"] = description
    return info


def _path(url: str) -> str:
    """A URL as an OpenAPI path key: braces, which a URL may hold but
    which would read as a template, percent-encoded."""
    return url.replace("{", "%7B").replace("}", "%7D")


def _operation_id(method: str, path: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    name, number = f"{method}_{stem}", 1
    while name in taken:
        number += 1
        name = f"{method}_{stem}_{number}"
    taken.add(name)
    return name


def _parameter(name: str, where: str, description: str, schema: Any) -> Any:
    """A parameter; a path one is required, an array one repeatable
    (``?exclude=a&exclude=b``)."""
    parameter: dict[str, Any] = {"name": name, "in": where, "description": description}
    if where == "path":
        parameter["required"] = True
    if schema.get("type") == "array":
        parameter.update(style="form", explode=True)
    parameter["schema"] = schema
    return parameter


class _Paths:
    """Makes the paths of one document, and their responses."""

    def __init__(
        self,
        settings: Settings,
        offered: Sequence[Format],
        names: Mapping[str | None, Sequence[str]] | None,
    ) -> None:
        self.settings = settings
        self.offered = offered
        self.names = names
        self.responses = Responses(offered)
        self.operation_ids: set[str] = set()

    def endpoint_paths(self, endpoint: Endpoint) -> dict[str, Any]:
        """The endpoint's URL and ``<url>/{check}``."""
        if endpoint.tags is None:
            runs, one = "every check", "Run one check"
            reserved = ", ".join(f"`{name}`" for name in RESERVED_NAMES)
            under = f" The names {reserved} are the extension's own URLs."
        else:
            tags = ", ".join(f"`{tag}`" for tag in sorted(endpoint.tags))
            runs, under = f"the checks tagged {tags}", ""
            one = f"Run one of {runs}"
        reports = self.responses.reports(
            self.settings.warn_status, self.settings.failure_status
        )
        refusals = {400: "Refused400", 405: "MethodNotAllowed", 406: "Refused406"}
        exclude = _parameter(
            "exclude",
            "query",
            "A check to leave out (repeatable); an unknown name is a 400.",
            {"type": "array", "items": self.name_schema(None)},
        )
        format_names = [offer.name for offer in self.offered if offer.name]
        format_ = _parameter(
            "format",
            "query",
            "The format of the answer, overriding `Accept`; an unknown name is a 406.",
            {"type": "string", "enum": format_names},
        )
        check = _parameter(
            "check",
            "path",
            "The name of a check this endpoint runs.",
            self.name_schema(endpoint.url),
        )
        url = endpoint.url
        check_url = _path(url.rstrip("/")) + "/{check}"
        return {
            _path(url): self.path_item(
                url,
                f"Run {runs}",
                f"The report on {runs}, less `?exclude=`. Runs the checks, or"
                " reuses their latest results while `HEALTHCHECK_CACHE_TTL` or"
                " the background refresh allow.",
                [exclude, format_],
                {**refusals, **reports},
                tag="health",
            ),
            check_url: self.path_item(
                check_url,
                one,
                "The report on the check named in the URL; a name this"
                f" endpoint does not run is a 404.{under}",
                [check, exclude, format_],
                {**refusals, 404: "Refused404", **reports},
                tag="health",
            ),
        }

    def history_path(self, most: int) -> dict[str, Any]:
        check = _parameter(
            "check",
            "query",
            "A check whose results to show (repeatable; default: every check)."
            " Ignored when details are not allowed.",
            {"type": "array", "items": self.name_schema(None)},
        )
        limit = _parameter(
            "limit",
            "query",
            "Results shown per series at the most.",
            {"type": "integer", "minimum": 0, "maximum": most},
        )
        ok = self.responses.json(
            "History200",
            "The recent results of this process: the overall status per run"
            " and, with details, each check's.",
            ref("schemas", "HistoryDocument"),
        )
        return self.path_item(
            "history",
            "Recent results",
            "This process's recent results as JSON, whatever the `Accept`."
            " Runs no check.",
            [check, limit],
            {200: ok, 400: "Refused400", 405: "MethodNotAllowed"},
            tag="history",
        )

    def openapi_path(self) -> dict[str, Any]:
        ok = self.responses.json(
            "OpenAPI200",
            "This document.",
            {
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": {"openapi": {"type": "string"}},
            },
        )
        return self.path_item(
            "openapi",
            "This OpenAPI document",
            "The health URLs of this app and their answers, as JSON whatever"
            " the `Accept`. Check names are listed only where details are"
            " allowed.",
            [],
            {200: ok, 405: "MethodNotAllowed"},
            tag="meta",
        )

    def asset_path(self, asset: str) -> dict[str, Any]:
        ok, not_modified = self.responses.asset(asset, ASSETS[asset])
        parameters = []
        if asset.endswith(".svg"):
            parameters.append(
                _parameter(
                    "status",
                    "query",
                    "The status whose colour the icon has.",
                    {"type": "string", "enum": list(COLOURS)},
                )
            )
        kind = "stylesheet" if asset.endswith(".css") else "icon"
        return self.path_item(
            asset,
            f"The status page's {kind}",
            "Served from the app's own origin, so that `default-src 'self'`"
            " allows it. Runs no check.",
            parameters,
            {200: ok, 304: not_modified, 405: "MethodNotAllowed"},
            tag="meta",
        )

    def path_item(
        self,
        path: str,
        summary: str,
        description: str,
        parameters: list[Any],
        responses: Mapping[int, str],
        *,
        tag: str,
    ) -> dict[str, Any]:
        """GET, and HEAD (the same answers without a body), on one path."""
        item: dict[str, Any] = {}
        for method in ("get", "head"):
            if method == "get":
                listed = {
                    str(code): ref("responses", responses[code])
                    for code in sorted(responses)
                }
            else:
                listed = self.responses.head(responses)
            item[method] = {
                "tags": [tag],
                "summary": summary if method == "get" else f"{summary} (no body)",
                "description": description,
                "operationId": _operation_id(method, path, self.operation_ids),
                "responses": listed,
            }
        if parameters:
            item["parameters"] = parameters
        return item

    def name_schema(self, url: str | None) -> dict[str, Any]:
        """A check name: any of the app's (``url`` None), or one the
        endpoint at ``url`` runs. An enum only when details are allowed."""
        if self.names is None or url is None or self.names[url] == self.names[None]:
            return ref("schemas", "CheckName")
        return {"type": "string", "enum": list(self.names[url])}

    def components(self) -> dict[str, Any]:
        """The components, with ``CheckName``: the app's names if shown."""
        name: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
        if self.names is not None:
            name["enum"] = list(self.names[None])
        components = self.responses.components()
        components["schemas"] = {**components["schemas"], "CheckName": name}
        return components
