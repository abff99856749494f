"""``python -m flask_healthcheck.probe``: a running server asked over real
HTTP (waitress on loopback), the exit status and the one line it prints;
and the package's names loading lazily, so the probe imports no Flask."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask, Request, redirect
from flask.typing import ResponseReturnValue

from flask_healthcheck import CheckResult, HealthCheck
from flask_healthcheck.app_secrets import is_secret_key
from flask_healthcheck.probe import public_url

from .browser import serve_wsgi
from .server_fixtures import skip_or_fail_missing
from .servers import BinaryNotFoundError, BlackHoleServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-for-details"
PASSWORD = "hunter22-in-url"
#: Seconds any probe subprocess may take before the test fails.
RUN_SECONDS = 30.0


def _details(request: Request) -> bool:
    return request.headers.get("X-Health-Token") == TOKEN


def make_app(release: threading.Event) -> Flask:
    """Health endpoints that pass, warn and fail, and the pages a probe
    pointed at the wrong URL meets."""
    app = Flask(__name__)
    app.config.update(
        HEALTHCHECK_FAILURE_STATUS=503,
        HEALTHCHECK_SHOW_DETAILS=_details,
        HEALTHCHECK_ENDPOINTS={
            "/livez": ["live"],
            "/readyz": ["ready"],
            "/warnz": ["optional"],
        },
    )
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process", tags=["live"])

    def database() -> bool:
        raise ConnectionError("database unreachable")

    health.add_check(database, name="database", tags=["ready"])
    health.add_check(
        lambda: CheckResult(status="fail", error="slow"),
        name="search",
        tags=["optional"],
        critical=False,
    )

    @app.get("/admin/health")
    def login_required() -> ResponseReturnValue:
        return redirect("/login?next=/admin/health")

    @app.get("/page")
    def page() -> str:
        return "<!doctype html><title>Sign in</title><form></form>"

    @app.get("/other.json")
    def other_json() -> dict[str, object]:
        return {"ok": True, "status": "UP"}

    @app.get("/big.json")
    def big_json() -> dict[str, object]:
        return {"status": "pass", "checks": {}, "padding": "x" * (2 << 20)}

    @app.get("/hang")
    def hang() -> str:
        release.wait(10)
        return "late"

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The app under waitress on 127.0.0.1; its base URL."""
    release = threading.Event()
    with serve_wsgi(make_app(release), threads=4) as base:
        yield base
        release.set()


def run_probe(
    *args: str, env: dict[str, str] | None = None
) -> tuple[int, list[str], str]:
    """The probe in a subprocess: exit status, stdout lines, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "flask_healthcheck.probe", *args],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return done.returncode, done.stdout.splitlines(), done.stderr


@pytest.mark.parametrize(
    ("path", "code", "start"),
    [
        ("/livez", 0, "pass 200 "),
        ("/warnz", 0, "warn 200 "),
        ("/readyz", 1, "fail 503 "),
        ("/health", 1, "fail 503 "),
    ],
)
def test_health_answers(server: str, path: str, code: int, start: str) -> None:
    status, lines, stderr = run_probe(server + path)
    assert status == code, (lines, stderr)
    (only,) = lines
    assert only.startswith(start + server + path + " ")
    assert stderr == ""


ENVELOPE = "Accept: application/json"


@pytest.mark.parametrize(
    ("path", "code", "start"),
    [
        ("/livez", 0, "pass 200 "),
        ("/warnz", 0, "pass 200 "),
        ("/readyz", 1, "fail 503 "),
    ],
)
def test_the_envelope(server: str, path: str, code: int, start: str) -> None:
    """A server (or a ``--header Accept:``) that answers the clearskies envelope;
    it has no warn: a warn is a success."""
    status, (only,), _ = run_probe(server + path, "--header", ENVELOPE)
    assert status == code
    assert only.startswith(start + server + path + " ")


def test_failing_checks_are_named_as_the_server_shows_them(server: str) -> None:
    """health+json names each check; the envelope only with details, here
    shown for the right ``X-Health-Token`` (sent with ``--header``)."""
    status, (line,), _ = run_probe(server + "/readyz")
    assert status == 1 and line.endswith(" ms: database")
    status, (line,), _ = run_probe(server + "/warnz")
    assert status == 0 and line.endswith(" ms: search")  # not critical
    status, (line,), _ = run_probe(server + "/health")
    assert status == 1 and line.endswith(" ms: database, search")
    status, (hidden,), _ = run_probe(server + "/readyz", "--header", ENVELOPE)
    assert status == 1 and hidden.endswith(" ms")
    status, (shown,), _ = run_probe(
        server + "/readyz", "-H", ENVELOPE, "--header", f"X-Health-Token: {TOKEN}"
    )
    assert status == 1
    assert shown.endswith(" ms: database")
    assert TOKEN not in shown


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/admin/health", "a redirect to /login, not a health answer"),
        ("/page", "text/html, not a health answer"),
        ("/other.json", "JSON of another shape"),
        ("/big.json", "a body over 1048576 bytes"),
        ("/nowhere", "text/html, not a health answer"),  # the app's own 404
        ("/health/nonexistent", "404"),  # ours: no such check
    ],
)
def test_not_a_health_answer(server: str, path: str, why: str) -> None:
    status, lines, _ = run_probe(server + path)
    assert status == 2
    (only,) = lines
    assert only.startswith("error ") and why in only


def test_a_redirect_is_not_followed(server: str) -> None:
    _, (only,), _ = run_probe(server + "/admin/health")
    assert only.startswith("error 302 ")
    assert "next=" not in only  # the Location's query is not printed


def test_refused(refused_port: int) -> None:
    status, (only,), _ = run_probe(f"http://127.0.0.1:{refused_port}/health")
    assert status == 2
    assert only.startswith(f"error - http://127.0.0.1:{refused_port}/health ")
    assert only.endswith(": connection refused")


def test_unknown_host() -> None:
    """``.invalid`` never resolves (RFC 6761); a machine whose resolver is
    unreachable may take longer than the probe's timeout to say so."""
    status, (only,), _ = run_probe("http://no-such-host.invalid/health")
    assert status == 2
    assert "unknown host" in only or "no answer within 5 s" in only


def test_a_hung_endpoint_is_bounded_by_the_timeout(server: str) -> None:
    status, (only,), _ = run_probe(server + "/hang", "--timeout", "0.5")
    assert status == 2
    assert only.endswith(": no answer within 0.5 s")


class RawServer:
    """One connection on 127.0.0.1 answered with ``answer`` (bytes, written
    in one go) or ``trickle`` (a byte every 50 ms, for ever: each read gets
    a byte in time, so only a bound on the whole probe ends it). What the
    probe sent is kept in :attr:`received`."""

    def __init__(
        self,
        answer: bytes = b"",
        *,
        trickle: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answer, self.trickle, self.tls = answer, trickle, tls
        self.received = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/health") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            connection, _ = self.listener.accept()
            if self.tls is not None:
                connection.settimeout(10)
                connection = self.tls.wrap_socket(connection, server_side=True)
        except OSError:  # ssl.SSLError included: the client refused the cert
            return
        with connection:
            connection.settimeout(10)
            while b"\r\n\r\n" not in self.received:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                self.received += chunk
            connection.sendall(self.answer)
            deadline = time.monotonic() + 10
            while self.trickle and not self.closing.wait(0.05):
                if time.monotonic() > deadline:
                    return
                try:
                    connection.sendall(b"X")
                except OSError:
                    return

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        self.thread.join(15)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def test_the_timeout_bounds_the_whole_probe() -> None:
    with RawServer(b"HTTP/1.1 200 OK\r\n", trickle=True) as server:
        status, (only,), _ = run_probe(server.url(), "--timeout", "0.5")
    assert status == 2
    assert only.endswith(": no answer within 0.5 s")


PASS = b'{"status": "pass", "checks": {}}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n"


@pytest.mark.parametrize(
    "answer",
    [
        HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(PASS), PASS),
        HEAD
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\n"
        + PASS[:5]
        + b"\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (len(PASS) - 5, PASS[5:]),
        HEAD + b"\r\n" + PASS,  # no length: the body ends with the connection
        b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD + b"\r\n" + PASS,
        HEAD.replace(b"1.1", b"1.0") + b"\r\n" + PASS,
    ],
    ids=["length", "chunked", "close", "interim", "http10"],
)
def test_how_a_body_is_framed(answer: bytes) -> None:
    with RawServer(answer) as server:
        status, (only,), stderr = run_probe(server.url())
    assert (status, stderr) == (0, "")
    assert only.startswith(f"pass 200 {server.url()} ")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer (no HTTP status line)"),
        (b"", "not an HTTP answer (the connection closed mid-answer)"),
        (HEAD + b"Content-Length: 100\r\n\r\n" + PASS, "closed mid-body"),
        (HEAD + b"X" * 70000, "not an HTTP answer (a line too long)"),
        (HEAD + b"X-A: 1\r\n" * 200 + b"\r\n", "too many headers"),
        (HEAD + b"\r\n" + b"[1, 2]", "JSON of another shape"),
        (HEAD + b"\r\n" + b"\xff{", "invalid JSON"),
        (HEAD + b'\r\n{"status": "pass", "checks": []}', "JSON of another shape"),
        (
            HEAD.replace(b"200 OK", b"500 Oops") + b"\r\n" + PASS,
            "'pass' with status 500, not a health answer",
        ),
    ],
)
def test_broken_answers(answer: bytes, why: str) -> None:
    with RawServer(answer) as server:
        status, (only,), stderr = run_probe(server.url(), "--timeout", "3")
    assert (status, stderr) == (2, "")
    assert only.startswith("error ") and why in only


def test_a_redirects_target_is_printed_without_its_secrets() -> None:
    answer = (
        b"HTTP/1.1 302 Found\r\n"
        b"Location: https://sso:s3kret@sso.example:8443/login?token=abc\r\n\r\n"
    )
    with RawServer(answer) as server:
        status, (only,), _ = run_probe(server.url())
    assert status == 2
    assert only.startswith(f"error 302 {server.url()} ")
    assert "a redirect to https://sso.example:8443/login, not a health answer" in only
    assert "s3kret" not in only and "abc" not in only


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1; its key beside it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail_missing(BinaryNotFoundError("openssl", "apt-get install openssl"))
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory / "cert.pem"


def _tls(certificate: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, certificate.with_name("key.pem"))
    return context


def test_https_verifies_the_certificate(certificate: Path) -> None:
    """The system's CAs by default, so a self-signed certificate is no
    health answer; ``SSL_CERT_FILE`` names the bundle to trust."""
    with RawServer(HEAD + b"\r\n" + PASS, tls=_tls(certificate)) as server:
        status, (only,), _ = run_probe(server.url())
    assert status == 2
    assert "CERTIFICATE_VERIFY_FAILED" in only
    with RawServer(HEAD + b"\r\n" + PASS, tls=_tls(certificate)) as server:
        status, (only,), _ = run_probe(
            server.url(), env={"SSL_CERT_FILE": str(certificate)}
        )
    assert status == 0
    assert only.startswith(f"pass 200 {server.url()} ")


def test_what_is_sent() -> None:
    """One GET with Host, Accept, basic auth from the URL, and the headers
    given, which replace the probe's own of the same name."""
    with RawServer(HEAD + b"\r\n" + PASS) as server:
        url = server.url("/readyz?x=1 2").replace("://", f"://probe:{PASSWORD}@")
        status, _, _ = run_probe(
            url, "-H", "X-Health-Token: abc", "--header", "user-agent:kubelet"
        )
    assert status == 0
    request = server.received.decode("latin-1").split("\r\n")
    assert request[0] == "GET /readyz?x=1%202 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in request
    assert "Accept: application/health+json, application/json;q=0.9" in request
    assert "Authorization: Basic cHJvYmU6aHVudGVyMjItaW4tdXJs" in request
    assert "X-Health-Token: abc" in request
    assert "user-agent: kubelet" in request
    assert not any(line.startswith("User-Agent") for line in request)


def test_a_server_that_never_answers(blackhole: BlackHoleServer) -> None:
    port = blackhole.port
    status, (only,), _ = run_probe(f"http://127.0.0.1:{port}/", "--timeout", "0.3")
    assert status == 2 and only.endswith("no answer within 0.3 s")


def test_a_password_in_the_url_is_not_printed(server: str) -> None:
    base = server.replace("http://", f"http://probe:{PASSWORD}@")
    status, (only,), stderr = run_probe(base + "/livez?token=abc&tag=x")
    assert status == 0
    assert PASSWORD not in only + stderr and "abc" not in only
    assert only.startswith(
        server.replace("http://", "pass 200 http://probe:***@")
        + "/livez?token=***&tag=x "
    )


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("token", True),
        ("apiKey", True),
        ("X-Amz-Signature", True),
        ("sig", True),  # an Azure SAS URL's signature
        ("author", False),
        ("tag", False),
    ],
)
def test_the_probe_masks_query_values_by_the_packages_rule(
    key: str, secret: bool
) -> None:
    """One rule for secret keys, the probe's printed URL included: the
    probe can't import redaction (it imports Flask), so both ask
    :mod:`flask_healthcheck.secret_keys`."""
    printed = public_url(urlsplit(f"http://127.0.0.1/livez?{key}=v4lue"))
    assert ("v4lue" not in printed) is secret
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    "args",
    [
        ["ftp://127.0.0.1/health"],
        ["127.0.0.1:8000/health"],
        ["http://127.0.0.1:99999/health"],
        ["http://127.0.0.1/health", "--timeout", "0"],
        ["http://127.0.0.1/health", "--timeout", "soon"],
        ["http://127.0.0.1/health", "--header", "no-colon"],
        [],
    ],
)
def test_bad_arguments(args: list[str]) -> None:
    status, lines, stderr = run_probe(*args)
    assert status == 2
    assert lines == []
    assert stderr.startswith("usage: python -m flask_healthcheck.probe")


def test_help_says_redirects_are_not_followed() -> None:
    status, lines, _ = run_probe("--help")
    assert status == 0
    assert "Redirects are not followed" in " ".join(" ".join(lines).split())


def test_the_probe_imports_no_flask(server: str) -> None:
    """Run as ``-m`` runs it, then look at what was imported."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['probe', {server + '/livez'!r}]\n"
        "try:\n"
        "    runpy.run_module('flask_healthcheck.probe', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    status = e.code\n"
        "names = ('flask', 'werkzeug', 'jinja2', 'click', 'blinker')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in names)\n"
        "ours = sorted(m for m in sys.modules if m.startswith('flask_healthcheck'))\n"
        "print(status, loaded, ours)\n"
    )
    status, (_, verdict), stderr = run_python(code)
    assert status == 0, stderr
    assert verdict == (
        "0 [] ['flask_healthcheck', 'flask_healthcheck.probe_http',"
        " 'flask_healthcheck.secret_keys']"
    )


def run_python(code: str) -> tuple[int, list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.returncode, done.stdout.splitlines(), done.stderr


# -- the package's names, loaded when first used -------------------------------


def test_importing_the_package_imports_no_flask() -> None:
    status, lines, stderr = run_python(
        "import sys, flask_healthcheck\n"
        "print('flask' in sys.modules, 'werkzeug' in sys.modules)\n"
    )
    assert status == 0, stderr
    assert lines == ["False False"]


def test_a_public_name_loads_on_first_use_with_the_redacting_filter() -> None:
    """The package logger's filter was put on at import; it is now put on
    before any public name is handed out."""
    status, lines, stderr = run_python(
        "import logging, flask_healthcheck\n"
        "logger = logging.getLogger('flask_healthcheck')\n"
        "print(len(logger.filters))\n"
        "health = flask_healthcheck.HealthCheck()\n"
        "print(type(health).__module__, type(logger.filters[0]).__name__)\n"
        "print(flask_healthcheck.signals.check_failed.name)\n"
    )
    assert status == 0, stderr
    assert lines == [
        "0",
        "flask_healthcheck.extension RedactingFilter",
        "check-failed",
    ]


#: Modules only some apps use: none loads with ``HealthCheck`` or its
#: ``init_app``, each on first use (issue 20: start-up cost).
LOADED_ON_FIRST_USE = (
    "asyncio",
    "flask_healthcheck.event_loop",
    "flask_healthcheck.feeds",
    "flask_healthcheck.feed_xml",
    "xml.etree.ElementTree",
    "flask_healthcheck.openapi",
    "flask_healthcheck.openmetrics",
)


def test_what_only_some_apps_use_loads_on_first_use() -> None:
    status, lines, stderr = run_python(
        "import sys\n"
        f"later = {LOADED_ON_FIRST_USE!r}\n"
        "from flask_healthcheck import HealthCheck\n"
        "print(sorted(m for m in later if m in sys.modules))\n"
        "print('flask_healthcheck.contrib' in sys.modules)\n"
        "from flask import Flask\n"
        "app = Flask('app')\n"
        "health = HealthCheck(app)\n"
        "print(sorted(m for m in later if m in sys.modules))\n"
        "print('flask_healthcheck.contrib' in sys.modules)\n"
        "client = app.test_client()\n"
        "for query in ['?format=rss', '?format=openmetrics', '/openapi.json']:\n"
        "    client.get('/health' + query)\n"
        "@health.check\n"
        "async def slow():\n"
        "    return True\n"
        "print(client.get('/health').status_code)\n"
        "print(sorted(m for m in later if m not in sys.modules))\n"
    )
    assert status == 0, stderr
    # contrib (its fork hooks with it) loads with init_app, before any fork.
    assert lines == ["[]", "False", "[]", "True", "200", "[]"]


@pytest.mark.parametrize(
    "statement",
    [
        "from flask_healthcheck import signals",
        "import flask_healthcheck.signals as signals",
        "from flask_healthcheck.signals import check_failed",
    ],
)
def test_signals_as_a_submodule(statement: str) -> None:
    status, lines, stderr = run_python(
        f"{statement}\nimport flask_healthcheck, sys\n"
        "print(flask_healthcheck.signals is sys.modules['flask_healthcheck.signals'])\n"
    )
    assert status == 0, stderr
    assert lines == ["True"]


def test_star_import_and_dir() -> None:
    import flask_healthcheck

    names = set(flask_healthcheck.__all__)
    assert names <= set(dir(flask_healthcheck))
    namespace: dict[str, object] = {}
    exec("from flask_healthcheck import *", namespace)
    assert names <= namespace.keys()
    assert namespace["HealthCheck"] is HealthCheck
    assert flask_healthcheck.CheckResult is CheckResult


def test_an_unknown_name_is_an_attribute_error() -> None:
    import flask_healthcheck

    with pytest.raises(AttributeError) as caught:
        flask_healthcheck.nothing_here  # type: ignore[attr-defined]  # noqa: B018
    assert str(caught.value) == (
        "module 'flask_healthcheck' has no attribute 'nothing_here'"
    )
    assert not hasattr(flask_healthcheck, "HEALTHCHECK_URL")
    status, lines, _ = run_python(
        "try:\n    from flask_healthcheck import nothing_here\n"
        "except ImportError as e:\n    print(e.name, e.msg)\n"
    )
    assert status == 0
    assert lines == [
        "flask_healthcheck cannot import name 'nothing_here' from 'flask_healthcheck'"
        f" ({ROOT / 'flask_healthcheck' / '__init__.py'})"
    ]


def test_the_health_json_document_is_what_the_probe_reads(server: str) -> None:
    """Guard for the probe's reading: the server's own document, as asked."""
    from .processes import http_get

    port = int(server.rsplit(":", 1)[1])
    answer = http_get(
        port, "/warnz", 5, {"Accept": "application/health+json, application/json;q=0.9"}
    )
    assert answer is not None
    assert answer.headers["Content-Type"].startswith("application/health+json")
    assert json.loads(answer.body)["status"] == "warn"


def test_a_body_in_a_coding_not_asked_for() -> None:
    """The probe asks for no coding (``identity``: without the header any
    is acceptable); a server that gzips anyway is still read, and a bomb
    is cut at the body's bound."""
    packed = gzip.compress(PASS)
    answer = HEAD + b"Content-Encoding: gzip\r\n\r\n" + packed
    with RawServer(answer) as server:
        status, (only,), stderr = run_probe(server.url())
    assert (status, stderr) == (0, ""), only
    assert b"\r\nAccept-Encoding: identity\r\n" in server.received
    bomb = gzip.compress(b'{"status": "pass", "checks": {}, "x": "' + b" " * 5_000_000)
    with RawServer(HEAD + b"Content-Encoding: gzip\r\n\r\n" + bomb) as server:
        status, (only,), _ = run_probe(server.url())
    assert status == 2 and "a body over 1048576 bytes" in only


def test_a_host_header_replaces_the_probes_own() -> None:
    """One ``Host`` header (two are a 400 at most servers)."""
    with RawServer(HEAD + b"\r\n" + PASS) as server:
        status, _, _ = run_probe(server.url(), "-H", "Host: health.example")
    assert status == 0
    request = server.received.decode("latin-1").split("\r\n")
    assert [line for line in request if line.lower().startswith("host:")] == [
        "Host: health.example"
    ]


def test_an_ipv6_literal_without_a_port() -> None:
    """``http://[::1]/`` is port 80 on ::1, not host ":" port 1."""
    status, (only,), _ = run_probe("http://[::1]/readyz", "--timeout", "2")
    # Refused, or no IPv6 here; whatever listens on port 80 is no health
    # endpoint of ours.
    assert status == 2
    assert only.split()[2] == "http://[::1]/readyz"
    assert "unknown host" not in only


def test_json_nested_too_deep() -> None:
    with RawServer(HEAD + b"\r\n" + b"[" * 100_000) as server:
        status, (only,), _ = run_probe(server.url())
    assert status == 2 and only.endswith("invalid JSON, not a health answer")
