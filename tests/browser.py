"""Browser-test harness: a real threaded WSGI server plus headless Chromium.

* :func:`serve_wsgi` serves any WSGI app (e.g. a Flask app) with waitress on
  ``127.0.0.1`` and a free port, in a background thread, and shuts it down
  cleanly (all connections closed, worker threads joined) on exit.
* :class:`Browser` drives Debian's ``/usr/bin/chromium`` through Debian's
  ``/usr/bin/chromedriver`` with Selenium 4.  The driver path is always passed
  explicitly, so Selenium Manager is never run and nothing is downloaded.
* :func:`find_chromium` / :func:`require_chromium` locate the two binaries and
  skip (locally) or fail (when ``CI`` is truthy) a test if they are missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from waitress.server import create_server  # type: ignore[import-untyped,unused-ignore]

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "CHROME_FLAGS",
    "DEBIAN_CHROMEDRIVER",
    "DEBIAN_CHROMIUM",
    "DESKTOP",
    "INSTALL_HINT",
    "PHONE",
    "Browser",
    "ci_is_truthy",
    "find_chromium",
    "require_chromium",
    "serve_wsgi",
]

DEBIAN_CHROMIUM: Final = "/usr/bin/chromium"
DEBIAN_CHROMEDRIVER: Final = "/usr/bin/chromedriver"
INSTALL_HINT: Final = "chromium not installed: apt-get install chromium chromium-driver"

PHONE: Final[tuple[int, int]] = (390, 844)
DESKTOP: Final[tuple[int, int]] = (1280, 800)

CHROME_FLAGS: Final[tuple[str, ...]] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    # Not in the original brief, added for robustness: CI containers often
    # have a 64 MiB /dev/shm, which makes Chromium crash on larger pages.
    # (Debian's /usr/bin/chromium wrapper tries to add this itself, but its
    # check breaks when /dev/shm is listed twice by findmnt.)
    "--disable-dev-shm-usage",
)

_TRUTHY: Final = frozenset({"1", "true", "yes", "on"})


# --------------------------------------------------------------------------
# WSGI server
# --------------------------------------------------------------------------


class _Closable(Protocol):
    def close(self) -> None: ...


class _Dispatcher(Protocol):
    """A ``waitress.wasyncore.dispatcher`` (client channel, listener or trigger)."""

    def del_channel(self) -> None: ...

    def handle_close(self) -> None: ...


class _Trigger(_Dispatcher, Protocol):
    def pull_trigger(self, thunk: Callable[[], object] | None = None) -> None: ...

    def close(self) -> None: ...


class _WaitressTaskDispatcher(Protocol):
    def shutdown(self, cancel_pending: bool = True, timeout: int = 5) -> bool: ...


class _WaitressServer(_Dispatcher, Protocol):
    """The part of ``waitress.server.TcpWSGIServer`` used here.

    Declared locally because waitress ships no type hints and the third-party
    ``types-waitress`` stubs get some of these attributes wrong.
    """

    effective_port: int
    socket: _Closable
    trigger: _Trigger
    task_dispatcher: _WaitressTaskDispatcher

    def run(self) -> None: ...


@contextlib.contextmanager
def serve_wsgi(
    app: WSGIApplication, *, threads: int = 4, shutdown_timeout: float = 10.0
) -> Iterator[str]:
    """Serve *app* on ``127.0.0.1:<free port>``; yield ``"http://127.0.0.1:<port>"``.

    The server is waitress (a production-grade threaded WSGI server) running its
    event loop in a daemon thread.  On exit, all client connections (including
    idle keep-alive connections held by the browser) are closed from inside the
    event loop, the loop thread is joined and the worker threads are stopped.
    """
    socket_map: MutableMapping[int, Any] = {}
    server = cast(
        "_WaitressServer",
        create_server(
            app,
            map=socket_map,
            host="127.0.0.1",
            port=0,  # the OS picks a free port; no bind race
            threads=threads,
            ident="browser-test",
            clear_untrusted_proxy_headers=True,
        ),
    )
    port = server.effective_port
    trigger = server.trigger
    loop = threading.Thread(target=server.run, name=f"waitress:{port}", daemon=True)
    loop.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # waitress has no public "stop" for a server run this way.  This thunk
        # runs inside the event-loop thread (so it never races the loop): it
        # closes every client channel and the listening socket, and takes the
        # wake-up pipe ("trigger") out of the map without closing it, so the
        # loop ends with an empty map.  The pipe must stay open until the loop
        # and the workers are gone: pull_trigger() queues the thunk *before*
        # writing to the pipe, so the loop may run the thunk first, and worker
        # threads also write to it; closing it in the thunk made those writes
        # fail with EBADF (or land on a reused fd number).
        def stop_loop() -> None:
            for dispatcher in list(socket_map.values()):
                if dispatcher is not server and dispatcher is not trigger:
                    cast("_Dispatcher", dispatcher).handle_close()  # clients
            server.del_channel()
            server.socket.close()  # stop listening
            trigger.del_channel()  # map is now empty -> asyncore loop returns

        trigger.pull_trigger(stop_loop)
        loop.join(shutdown_timeout)
        # waitress only stops its worker threads itself on KeyboardInterrupt.
        server.task_dispatcher.shutdown(
            cancel_pending=True, timeout=int(shutdown_timeout)
        )
        trigger.close()  # now nothing else can write to the pipe
        if loop.is_alive():  # pragma: no cover - defensive
            raise RuntimeError(f"waitress loop on port {port} did not stop")


# --------------------------------------------------------------------------
# Locating Chromium
# --------------------------------------------------------------------------


def ci_is_truthy(value: str | None = None) -> bool:
    """Whether ``$CI`` (or *value*) is a truthy string such as ``"true"``."""
    if value is None:
        value = os.environ.get("CI")
    return (value or "").strip().lower() in _TRUTHY


def _executable(path: str | None) -> str | None:
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


def find_chromium() -> tuple[str, str] | None:
    """Return ``(chromium, chromedriver)`` paths, or ``None`` if either is missing.

    Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` are preferred;
    ``$PATH`` is searched as a fallback.  Never downloads anything.
    """
    chromium = (
        _executable(DEBIAN_CHROMIUM)
        or _executable(shutil.which("chromium"))
        or _executable(shutil.which("chromium-browser"))
    )
    chromedriver = _executable(DEBIAN_CHROMEDRIVER) or _executable(
        shutil.which("chromedriver")
    )
    if chromium is None or chromedriver is None:
        return None
    return chromium, chromedriver


def require_chromium() -> tuple[str, str]:
    """For fixtures: return the paths, else skip (or fail, if ``CI`` is truthy)."""
    found = find_chromium()
    if found is not None:
        return found
    if ci_is_truthy():
        pytest.fail(
            f"CI is set but Chromium/chromedriver is missing "
            f"({DEBIAN_CHROMIUM}, {DEBIAN_CHROMEDRIVER}); the CI script must run: "
            "apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    pytest.skip(INSTALL_HINT)


# --------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class Browser:
    """Headless Chromium driven by Selenium 4 and Debian's chromedriver.

    A fresh temporary ``--user-data-dir`` is created per instance and removed by
    :meth:`quit`.  chromedriver runs in its own session (process group), so
    :meth:`quit` can also reap any straggling Chromium helper processes.
    """

    def __init__(
        self,
        chromium: str = DEBIAN_CHROMIUM,
        chromedriver: str = DEBIAN_CHROMEDRIVER,
        *,
        window_size: tuple[int, int] = DESKTOP,
        mobile: bool = False,
        page_load_timeout: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        env_driver = os.environ.get("SE_CHROMEDRIVER")
        if env_driver and os.path.realpath(env_driver) != os.path.realpath(
            chromedriver
        ):
            # Selenium would silently prefer $SE_CHROMEDRIVER over Service(path).
            raise RuntimeError(
                f"SE_CHROMEDRIVER={env_driver!r} would override {chromedriver!r}"
            )
        self._profile = tempfile.mkdtemp(prefix="browser-test-profile-")
        width, height = window_size
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROME_FLAGS, *extra_args):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self._profile}")
        options.add_argument(f"--window-size={width},{height}")
        # Keep Chromium's writes outside the profile (Crashpad's "Crash Reports")
        # in the temporary directory too, instead of ~/.config/chromium.
        env = dict(os.environ)
        env["XDG_CONFIG_HOME"] = os.path.join(self._profile, "xdg-config")
        env["XDG_CACHE_HOME"] = os.path.join(self._profile, "xdg-cache")
        # Explicit driver path => Selenium Manager is skipped entirely.
        # start_new_session => chromedriver leads a process group of its own.
        service = Service(
            executable_path=chromedriver, env=env, popen_kw={"start_new_session": True}
        )
        self._pgid: int | None = None
        try:
            self._driver = webdriver.Chrome(service=service, options=options)
        except BaseException:
            self._reap(service)
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self._service = service
        self._pgid = self._process_group(service)
        self._closed = False
        try:
            self._driver.set_page_load_timeout(page_load_timeout)
            self.set_window_size(width, height, mobile=mobile)
        except BaseException:
            self.quit()
            raise

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.quit()

    def quit(self) -> None:
        """Stop Chromium and chromedriver, reap stragglers, delete the profile.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._driver.quit()
        finally:
            self._reap(self._service, self._pgid)
            shutil.rmtree(self._profile, ignore_errors=True)

    @staticmethod
    def _process_group(service: Service) -> int | None:
        process = getattr(service, "process", None)
        pid = getattr(process, "pid", None)
        return pid if isinstance(pid, int) else None

    @classmethod
    def _reap(cls, service: Service, pgid: int | None = None) -> None:
        # chromedriver was started with start_new_session=True, so its pid is
        # the id of a process group that holds only chromedriver and the
        # Chromium processes it launched: end exactly that group.
        pgid = pgid if pgid is not None else cls._process_group(service)
        if pgid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    # -- API ---------------------------------------------------------------

    @property
    def driver(self) -> webdriver.Chrome:
        """The underlying Selenium driver, for anything not wrapped here."""
        return self._driver

    def set_window_size(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Make the page viewport exactly *width* x *height* CSS px (DPR 1).

        ``--window-size`` alone sizes the outer window (headless Chromium keeps
        ~140 px of simulated browser UI), so this uses the DevTools
        ``Emulation.setDeviceMetricsOverride`` command, which also fixes
        ``screen.*`` and makes screenshots exactly *width* px wide.  The
        override survives navigation.  ``mobile=True`` additionally emulates
        a phone's layout viewport (``<meta name=viewport>`` is honoured).
        """
        self._driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": mobile,
            },
        )

    def open(self, url: str) -> None:
        """Navigate and wait for the ``load`` event."""
        self._driver.get(url)

    def visible_text(self) -> str:
        """``document.body.innerText`` (rendered, visible text only)."""
        return self._script_str("return document.body ? document.body.innerText : '';")

    def computed_style(self, css_selector: str, prop: str) -> str:
        """``getComputedStyle(el).getPropertyValue(prop)`` for the first match.

        *prop* is a CSS name (``background-color``); camelCase is accepted too.
        Colors come back as ``rgb(r, g, b)`` (or ``rgba(...)`` if translucent).
        Raises ``LookupError`` if nothing matches *css_selector*.
        """
        if not prop.startswith("--"):
            prop = _CAMEL.sub("-", prop).lower()
        value = self._driver.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "return el ? getComputedStyle(el).getPropertyValue(arguments[1]) : null;",
            css_selector,
            prop,
        )
        if value is None:
            raise LookupError(f"no element matches {css_selector!r}")
        return str(value).strip()

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG of the viewport to *path* (parents created); return the path."""
        data = self._driver.get_screenshot_as_png()
        if not data.startswith(_PNG_MAGIC):
            raise RuntimeError("chromedriver returned something that is not a PNG")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        # The documentation's pictures of the status page are these:
        # HEALTHCHECK_DOCS_SCREENSHOTS=docs/_static pytest tests/test_browser.py
        docs = os.environ.get("HEALTHCHECK_DOCS_SCREENSHOTS")
        if docs:
            (Path(docs) / f"status-page-{out.name}").write_bytes(data)
        return out

    def _script_str(self, script: str, *args: object) -> str:
        value = self._driver.execute_script(script, *args)
        if not isinstance(value, str):
            raise TypeError(
                f"expected a string from the page, got {type(value).__name__}"
            )
        return value
