"""The parts of the OpenAPI document that every app's shares: the JSON
Schemas of the JSON answers, the headers, and the responses (a response
per status code, in every format on offer), referenced from the paths.

The schemas describe exactly what :mod:`~flask_healthcheck.formats` and
:mod:`~flask_healthcheck.history` write: the envelope with exactly its
five keys, health+json as the draft has it, the history document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .checks import STATUSES
from .formats import ENVELOPE_STATUS, Format
from .page_assets import ASSET_HEADERS

#: Status codes a refused request gets, whatever the checks say.
REFUSALS = (400, 404, 405, 406)


def ref(kind: str, name: str) -> dict[str, str]:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def is_json(mimetype: str) -> bool:
    """Whether a media type is JSON (``application/json``, ``*+json``)."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def format_schema(offer: Format, statuses: Sequence[str]) -> dict[str, Any]:
    """The schema of an answer in ``offer`` whose report status is one of
    ``statuses``: the JSON formats exactly, other formats as text."""
    wanted = [s for s in STATUSES if s in statuses]
    if offer.mimetype == "application/json":
        shown = sorted({ENVELOPE_STATUS[s] for s in wanted}, reverse=True)
        return {
            "allOf": [
                ref("schemas", "Envelope"),
                {"properties": {"status": {"enum": shown}}},
            ]
        }
    if offer.mimetype == "application/health+json":
        return {
            "allOf": [
                ref("schemas", "HealthDocument"),
                {"properties": {"status": {"enum": wanted}}},
            ]
        }
    if is_json(offer.mimetype):
        return {"description": "JSON, as the format's renderer writes it."}
    return {"type": "string"}


def no_store_headers() -> dict[str, Any]:
    """``format_registry.HEADERS``: on every answer under the health URLs."""
    return {
        "Cache-Control": ref("headers", "CacheControl"),
        "Vary": ref("headers", "Vary"),
    }


class Responses:
    """The responses of one document by name, for ``components``.

    :param offered: the formats the health URLs answer in.
    """

    def __init__(self, offered: Sequence[Format]) -> None:
        self.offered = offered
        self.by_name: dict[str, Any] = {}
        words = {
            400: "A query names no check (`?exclude=`, `?check=`) or is out of"
            " range (`?limit=`); `input_errors` says which.",
            404: "No such check under this endpoint.",
        }
        for code, description in words.items():
            self.by_name[f"Refused{code}"] = self.negotiated(description, ["fail"])
        # No format was agreed on: the envelope, whatever the Accept.
        self.by_name["Refused406"] = {
            "description": "`?format=` names no format on offer; the envelope's"
            " `input_errors` lists the names.",
            "headers": no_store_headers(),
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            ref("schemas", "Envelope"),
                            {"properties": {"status": {"enum": ["failure"]}}},
                        ]
                    }
                }
            },
        }
        refused = self.negotiated(
            "Only GET and HEAD answer here: any other method (POST, PUT,"
            " DELETE, OPTIONS, ...) gets this 405, listed under GET as"
            " OpenAPI has no place for every other method.",
            ["fail"],
        )
        refused["headers"]["Allow"] = ALLOW
        self.by_name["MethodNotAllowed"] = refused

    def negotiated(self, description: str, statuses: Sequence[str]) -> dict[str, Any]:
        """A response in every format on offer, JSON ones with a schema."""
        content = {
            offer.mimetype: {"schema": format_schema(offer, statuses)}
            for offer in self.offered
        }
        return {
            "description": description,
            "headers": no_store_headers(),
            "content": content,
        }

    def reports(self, warn_status: int, failure_status: int) -> dict[int, str]:
        """The status codes of a report and their responses' names: 200,
        ``HEALTHCHECK_FAILURE_STATUS`` and, if not 200,
        ``HEALTHCHECK_WARN_STATUS``. A code that is also a refusal's (a
        failure status of 400) documents both in one response."""
        by_code: dict[int, list[str]] = {200: ["pass"]}
        by_code.setdefault(warn_status, []).append("warn")
        by_code.setdefault(failure_status, []).append("fail")
        words = {"pass": "passing", "warn": "passing with warnings", "fail": "failing"}
        names: dict[int, str] = {}
        for code, statuses in by_code.items():
            refused = code in REFUSALS
            description = "The report: " + " or ".join(words[s] for s in statuses)
            description += " (or the request refused)." if refused else "."
            response = self.negotiated(
                description, [*statuses, "fail"] if refused else statuses
            )
            if code == 405:
                response["headers"]["Allow"] = ALLOW
            names[code] = self.add(f"Report{code}", response)
        return names

    def json(self, name: str, description: str, schema: Any) -> str:
        """A response in JSON only, whatever the ``Accept``."""
        return self.add(
            name,
            {
                "description": description,
                "headers": no_store_headers(),
                "content": {"application/json": {"schema": schema}},
            },
        )

    def asset(self, asset: str, mimetype: str) -> tuple[str, str]:
        """The names of a page asset's 200 and of a 304."""
        cache = {
            "description": "The asset is the same for every client.",
            "schema": {"type": "string", "const": ASSET_HEADERS["Cache-Control"]},
        }
        etag = {"description": "The asset's version.", "schema": {"type": "string"}}
        ok = self.add(
            "Asset" + re.sub(r"\W", "", asset.title()),
            {
                "description": f"The status page's {asset}.",
                "headers": {"Cache-Control": cache, "ETag": etag},
                "content": {mimetype: {"schema": {"type": "string"}}},
            },
        )
        not_modified = {
            "description": "The asset the client has (`If-None-Match`) is current.",
            "headers": {"ETag": etag},
        }
        return ok, self.add("NotModified", not_modified)

    def add(self, name: str, response: dict[str, Any]) -> str:
        self.by_name[name] = response
        return name

    def head(self, responses: Mapping[int, str]) -> dict[str, Any]:
        """HEAD's responses: GET's status codes and headers, no content.

        The 405 that any other method gets is listed once, under GET:
        OpenAPI has no "every other method"."""
        head: dict[str, Any] = {}
        for code in sorted(responses):
            if code == 405:
                continue
            name = responses[code]
            head_name = f"{name}Head"
            if head_name not in self.by_name:
                got = self.by_name[name]
                self.by_name[head_name] = {
                    "description": got["description"],
                    **({"headers": got["headers"]} if "headers" in got else {}),
                }
            head[str(code)] = ref("responses", head_name)
        return head

    def components(self) -> dict[str, Any]:
        return {
            "schemas": SCHEMAS,
            "responses": dict(sorted(self.by_name.items())),
            "headers": HEADERS,
        }


ALLOW = {
    "description": "The methods allowed: `GET, HEAD`.",
    "schema": {"type": "string"},
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}

#: The JSON Schemas of the JSON answers, exactly as the code writes them.
SCHEMAS: dict[str, Any] = {
    "Envelope": {
        "description": (
            "The clearskies envelope. Without details `data` is `{}` on"
            " success and `[]` on failure; with details it holds each"
            " check's result. A refused request has `input_errors`."
        ),
        "type": "object",
        "required": ["status", "error", "data", "pagination", "input_errors"],
        "additionalProperties": False,
        "properties": {
            "status": {"enum": ["success", "failure"]},
            "error": {"const": ""},
            "data": {
                "anyOf": [
                    {"type": "object", "maxProperties": 0},
                    {"type": "array", "maxItems": 0},
                    {
                        "type": "object",
                        "required": ["checks"],
                        "additionalProperties": False,
                        "properties": {
                            "checks": {
                                "type": "object",
                                "additionalProperties": ref("schemas", "CheckDetails"),
                            }
                        },
                    },
                ]
            },
            "pagination": {"type": "object", "maxProperties": 0},
            "input_errors": {
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
        },
    },
    "CheckDetails": {
        "type": "object",
        "required": ["status", "duration_ms", "error"],
        "additionalProperties": False,
        "properties": {
            "status": {"enum": list(STATUSES)},
            "duration_ms": {"type": "number", "minimum": 0},
            "error": {**_NULLABLE_TEXT, "description": "Redacted."},
        },
    },
    "HealthDocument": {
        "description": (
            "`application/health+json` (draft-inadarei-api-health-check-06)."
        ),
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": list(STATUSES)},
            "version": {"type": "string"},
            "releaseId": {"type": "string"},
            "serviceId": {"type": "string"},
            "description": {"type": "string"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "output": {"type": "string"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "checks": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": ref("schemas", "HealthCheckResult"),
                },
            },
        },
    },
    "HealthCheckResult": {
        "type": "object",
        "required": ["status", "time"],
        "properties": {
            "status": {"enum": list(STATUSES)},
            "time": _TIME,
            "componentId": {"type": "string"},
            "componentType": {"type": "string"},
            "observedValue": {},
            "observedUnit": {"type": "string"},
            "output": {"type": "string"},
            "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "HistoryDocument": {
        "description": "`<url>/history`; `checks` only with details.",
        "type": "object",
        "required": ["since", "max_results", "max_age_seconds", "limit"],
        "additionalProperties": False,
        "properties": {
            "since": _TIME,
            "max_results": {"type": "integer", "minimum": 0},
            "max_age_seconds": {"type": "number", "minimum": 0},
            "limit": {"type": "integer", "minimum": 0},
            "overall": ref("schemas", "HistorySeries"),
            "checks": {
                "type": "object",
                "additionalProperties": ref("schemas", "HistorySeries"),
            },
        },
    },
    "HistorySeries": {
        "type": "object",
        "required": [
            "status",
            "since",
            "uptime_percent",
            "transitions",
            "count",
            "results",
        ],
        "additionalProperties": False,
        "properties": {
            "status": {"enum": [*STATUSES, None]},
            "since": {"type": ["string", "null"], "format": "date-time"},
            "uptime_percent": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": 100,
            },
            "transitions": {"type": "integer", "minimum": 0},
            "count": {"type": "integer", "minimum": 0},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["time", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "time": _TIME,
                        "status": {"enum": list(STATUSES)},
                        "duration_ms": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
    },
}

#: The headers every answer under the health URLs carries
#: (``format_registry.HEADERS``).
HEADERS: dict[str, Any] = {
    "CacheControl": {
        "description": "No cache may keep a health answer.",
        "schema": {"type": "string", "const": "no-store"},
    },
    "Vary": {
        "description": "One URL serves several formats.",
        "schema": {"type": "string", "const": "Accept"},
    },
}
