"""Redaction of a 1 MB adversarial message: what one log record or one
error costs when a dependency answers with garbage.

    python benchmarks/redaction.py

Prints the time to redact the message as every channel does (cut to the
scan bound first) and, to show the patterns are linear, the time to scan
256 KB and 1 MB of it whole.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from flask_healthcheck.redact import MAX_SCAN, redact  # noqa: E402

#: The target for one redaction of the 1 MB message, in milliseconds.
TARGET_MS = 20.0


def adversarial(size: int = 1 << 20) -> str:
    """Base64-like runs, ``a-a-a-``, ``key=value`` chains and ``://user:pw@``
    fragments, interleaved, ``size`` characters."""
    pieces = [
        "aB3-_x9Zq7" * 400,
        "a-" * 2000,
        "password=abc token=def&api_key=ghi " * 100,
        "://user:pw@" * 300,
    ]
    text = "".join(pieces)
    return (text * (size // len(text) + 1))[:size]


def _time(text: str, limit: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        redact(text, limit=limit)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run() -> list[str]:
    message = adversarial()
    bounded = _time(message, MAX_SCAN, 50)
    whole_quarter = _time(message[: 1 << 18], 1 << 18, 3)
    whole = _time(message, len(message), 3)
    verdict = "ok" if bounded <= TARGET_MS else "OVER TARGET"
    return [
        f"1 MB adversarial message, cut to {MAX_SCAN} chars: {bounded:.2f} ms"
        f" (target <= {TARGET_MS:g} ms: {verdict})",
        f"scanned whole, 256 KB: {whole_quarter:.1f} ms; 1 MB: {whole:.1f} ms"
        f" (ratio {whole / whole_quarter:.1f}; 4.0 is linear)",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
