"""``disk(path)``: a factory for a service that fails when a disk fills up."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import NamedTuple

from ..errors import ConfigurationError
from ..services import observe


class DiskSpaceError(Exception):
    """Less space is free than the check asks for.

    .. versionadded:: 0.1.0
    """


class DiskUsage(NamedTuple):
    """Bytes on the disk holding the path; the value of a :func:`disk` service.

    .. versionadded:: 0.1.0
    """

    total: int
    used: int
    free: int


def _size(value: float) -> str:
    """Bytes for people: ``"1.5 GiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def disk(
    path: str | os.PathLike[str] = ".",
    *,
    min_free: int = 0,
    min_free_ratio: float = 0.0,
) -> Callable[[], DiskUsage]:
    """A service factory giving the :class:`DiskUsage` of the disk holding ``path``.

    Building it fails when less is free than either minimum, or when
    ``path`` does not exist (an unmounted volume). The free bytes are the
    observed value. Standard library only: :func:`shutil.disk_usage`.

    :param path: a file or directory on the disk to watch.
    :param min_free: bytes that must be free, such as ``2 * 1024**3``.
    :param min_free_ratio: the share of the disk that must be free, from 0
        to 1, such as ``0.1`` for 10%.

    .. versionadded:: 0.1.0
    """
    if isinstance(min_free, bool) or not isinstance(min_free, int) or min_free < 0:
        raise ConfigurationError(
            "min_free of disk() must be a number of bytes, 0 or more,"
            f" got {min_free!r}."
        )
    if (
        isinstance(min_free_ratio, bool)
        or not isinstance(min_free_ratio, (int, float))
        or not 0 <= min_free_ratio <= 1
    ):
        raise ConfigurationError(
            "min_free_ratio of disk() must be a share from 0 to 1, such as 0.1,"
            f" got {min_free_ratio!r}."
        )
    location = os.fspath(path)

    def factory() -> DiskUsage:
        usage = DiskUsage(*shutil.disk_usage(location))
        observe(usage.free, "bytes")
        needed = max(min_free, min_free_ratio * usage.total)
        if usage.free < needed:
            share = usage.free / usage.total if usage.total else 0.0
            raise DiskSpaceError(
                f"{_size(usage.free)} free on {location} ({share:.0%}),"
                f" below the {_size(needed)} asked for"
            )
        return usage

    factory.__qualname__ = factory.__name__ = f"disk({location!r})"
    return factory
