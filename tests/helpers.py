"""Shared test data: the seed's exact response bodies."""

from __future__ import annotations

SUCCESS = b'{"status": "success", "error": "", "data": {}, "pagination": {}, "input_errors": {}}'  # noqa: E501
FAILURE = b'{"status": "failure", "error": "", "data": [], "pagination": {}, "input_errors": {}}'  # noqa: E501
