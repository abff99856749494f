from __future__ import annotations


def memory_backend() -> dict[str, object]:
    """A service that always builds: clearskies' in-memory backend."""
    return {}
