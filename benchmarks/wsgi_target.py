"""Subprocess entry: serve one adapter's app with waitress on 127.0.0.1.

    python wsgi_target.py --lib py-healthcheck --checks 3 --check-sleep 0.02 \
        --cache-ttl 5 --threads 8

Binds port 0 (the OS picks a free port), prints ``READY <port>`` on stdout,
then serves until terminated (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters import get_adapter, sleeping_check  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--checks", type=int, default=3)
    parser.add_argument("--check-sleep", type=float, default=0.02)
    parser.add_argument("--cache-ttl", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    from waitress import create_server  # type: ignore[import-untyped]

    adapter = get_adapter(args.lib)
    checks = [sleeping_check(args.check_sleep) for _ in range(args.checks)]
    app = adapter.build_app(checks, timeout=args.timeout, cache_ttl=args.cache_ttl)
    server = create_server(
        app,
        host="127.0.0.1",  # loopback only
        port=0,
        threads=args.threads,
        connection_limit=64,
        channel_timeout=10,
    )
    port = server.effective_port
    print(f"READY {port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
