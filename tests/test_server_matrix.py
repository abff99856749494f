"""Every server a Flask user deploys with, against every promise of DESIGN's
"Any server, any process model", over loopback; and the table of
docs/deploying.md made from it.

One server start per row of :data:`ROWS`, serving :data:`APP`: Flask-SQLAlchemy
on the suite's PostgreSQL, a boot self-check (``health.run()`` at import, in
the process that loads the app: a pre-fork master, unless the server loads it
in each worker) and ``health.start(app)`` at import. For
:data:`LOAD_SECONDS`, :data:`CLIENTS` threads ask the app's own route for
``SELECT <n>`` of a random ``n`` while a prober alternates ``/readyz`` and
``/livez``, and a readiness check is blocked in C (``flock`` on a file the test
holds locked: what a locked SQLite file does). A check that only the refresh
runs, failing every time, and a ``check_failed`` subscriber write their pid
to files. Then, for each promise:

1. every ``/readyz`` answered within its checks' timeout (plus a margin);
2. every ``/livez`` answered 200 sooner than the blocked check's timeout;
3. one process refreshed and alerted while the test ran, never a pre-fork
   master nor the reloader's watching process (uWSGI's master holds no lock);
4. every answer of the app's own route carried its own request's value, none
   answered 500, every ``/readyz`` saw ``SELECT <n>`` return its own ``n``
   and was answered from the serving process's own results.

``test_the_matrix_in_the_docs_is_current`` compares the table in
docs/deploying.md with :func:`matrix_table`; ``UPDATE_DOCS=1`` rewrites it.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from .gunicorn import StartGunicorn
from .helpers import Bounded
from .processes import Answer, LoggedServer, Started, http_get
from .servers import LOOPBACK, find_free_port
from .uwsgi import StartUWSGI

#: The blocked readiness check's timeout, and every check's, seconds.
READY_TIMEOUT = 1.0
#: The refresh interval, seconds.
INTERVAL = 0.2
#: Seconds of concurrent load per server.
LOAD_SECONDS = 1.5
#: Client threads asking the app's own route meanwhile.
CLIENTS = 3
#: What a probe may take beyond its checks' timeout on a busy machine.
MARGIN = 1.5
#: A request unanswered after this long counts as unanswered.
REQUEST_TIMEOUT = 10.0
#: Seconds for a server to answer its first /livez.
START_SECONDS = 10.0
HEALTH_JSON = {"Accept": "application/health+json"}

#: The promises, as the table's columns.
PROMISES = (
    "A probe answers within its checks' timeouts",
    "`/livez` never waits on a readiness check",
    "One refresher and one alert per host",
    "Nothing crosses a fork",
)

APP = """
import fcntl
import os
import random
import time

from flask import Flask
from sqlalchemy import text

from flask_healthcheck import CheckResult, HealthCheck, signals

HERE = os.path.dirname(os.path.abspath(__file__))
app = Flask(__name__)
app.config.update(
    SQLALCHEMY_DATABASE_URI=os.environ["MATRIX_DATABASE_URL"],
    HEALTHCHECK_ENDPOINTS={{"/livez": ["live"], "/readyz": ["ready"]}},
    HEALTHCHECK_TIMEOUT={timeout},
    HEALTHCHECK_INTERVAL={interval},
    HEALTHCHECK_SHOW_DETAILS=True,
    HEALTHCHECK_RUN_DIR=os.path.join(HERE, "run"),
)
{database}
health = HealthCheck(app)


def note(name, *words):
    with open(os.path.join(HERE, name), "a") as f:
        f.write(" ".join(map(str, (time.time(), os.getpid(), *words))) + "\\n")


@health.check(tags=["live"])
def alive():
    return True


@health.check(tags=["ready"])
def database(sqlalchemy):
    n = random.randrange(1, 1 << 30)
    got = sqlalchemy.execute(text(f"SELECT {{n}} FROM pg_sleep(0.005)")).scalar()
    return got == n or (False, f"SELECT {{n}} returned {{got}}")


@health.check(tags=["ready"])
def blocked():
    # Blocked in C until the test lets go: a dependency that hangs.
    fd = os.open(os.environ["MATRIX_HELD"], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
    return True


@health.check(tags=["ready"])
def whoami():
    return CheckResult(observed_value=os.getpid())


@health.check(tags=["refresh"])
def tick():
    note("ticks")
    return False  # every refresh: one alert, from one process of the host


def alert(sender, result):
    note("alerts", result.name)


signals.check_failed.connect(alert, app, weak=False)


@app.after_request
def pid_header(response):
    response.headers["X-Pid"] = str(os.getpid())
    return response


@app.get("/value/<int:n>")
def value(n):
{value}


# At import, in the process that loads the app: the refresh, and a boot
# self-check, which joins the refresh's database check and returns once that
# check's connection is back in the pool, for the workers to inherit.
health.start(app)
with app.app_context():
    health.run(exclude=["blocked", "tick"])
"""

FLASK_SQLALCHEMY = """\
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy(app)
"""
#: A query of a few ms: two processes sharing a socket then often both wait
#: on it for an answer, and one may read the other's.
FLASK_SQLALCHEMY_VALUE = """\
    query = text(f"SELECT {n} FROM pg_sleep(0.005)")
    return str(db.session.execute(query).scalar())"""
#: Without Flask-SQLAlchemy the ready-made service makes its own engine from
#: SQLALCHEMY_DATABASE_URI; the app's route answers without a database.
OWN_ENGINE_VALUE = "    return str(n)"


def app_source(flask_sqlalchemy: bool = True) -> str:
    return APP.format(
        timeout=READY_TIMEOUT,
        interval=INTERVAL,
        database=FLASK_SQLALCHEMY if flask_sqlalchemy else "",
        value=FLASK_SQLALCHEMY_VALUE if flask_sqlalchemy else OWN_ENGINE_VALUE,
    )


@dataclass(frozen=True)
class Row:
    """A server and how it is run: a row of the table."""

    id: str
    #: How the table names it.
    server: str
    kind: str
    args: tuple[str, ...] = ()
    worker_class: str = "sync"
    preload: bool = False
    #: Notes for cells, by promise number (0-based).
    notes: dict[int, str] = field(default_factory=dict)
    #: Why the promises do not hold there yet: the test is an expected
    #: failure, not run unless ``pytest --runxfail``, and the table says so.
    failing: str | None = None


ONE_PROCESS = "✓ (one process: nothing forks)"
#: gunicorn -k gevent: a worker stalls with a check blocked in C (and with
#: the app's boot run, without --preload); see the report of issue 16.
ROWS = (
    *(
        Row(
            f"gunicorn-{worker}{'-preload' if preload else ''}",
            f"gunicorn `{worker}`{' `--preload`' if preload else ''}",
            "gunicorn",
            worker_class=worker,
            preload=preload,
        )
        for worker in ("sync", "gthread", "gevent")
        for preload in (False, True)
    ),
    Row("uwsgi-default", "uWSGI (defaults)", "uwsgi"),
    Row(
        "uwsgi-enable-threads",
        "uWSGI `--enable-threads`",
        "uwsgi",
        ("--enable-threads",),
    ),
    Row(
        "uwsgi-lazy-apps",
        "uWSGI `--lazy-apps`",
        "uwsgi",
        ("--lazy-apps",),
        notes={3: "✓ (each worker loads the app: nothing forks after import)"},
    ),
    Row("waitress", "waitress", "waitress", notes={3: ONE_PROCESS}),
    Row("flask-run", "`flask run`", "flask", ("--no-reload",), notes={3: ONE_PROCESS}),
    Row(
        "flask-run-reload",
        "`flask run --reload`",
        "flask",
        ("--reload",),
        notes={
            2: "✓ (the watching process never refreshes)",
            3: "✓ (the serving process is a new interpreter, not a fork)",
        },
    ),
)


class Server(Protocol):
    port: int

    def tail(self, lines: int = ...) -> str: ...


class CommandServer(LoggedServer):
    """waitress or ``flask run``, started by a test on a free loopback
    ``port``, stopped (its whole process group) at teardown."""

    tail_lines = 40

    def __init__(
        self, directory: Path, command: Sequence[str], port: int, env: dict[str, str]
    ) -> None:
        self.directory = directory
        log = directory / "server.log"
        super().__init__(command, log, port=port, cwd=directory, env=env)


@pytest.fixture
def command_server(tmp_path: Path) -> Iterator[Started[CommandServer]]:
    started = Started[CommandServer](tmp_path, "server")
    yield started
    started.stop()


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A file locked (``flock``) by the test, which the blocked check waits on."""
    path = tmp_path / "held.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield path
    os.close(fd)  # the blocked checks return; the servers stop sooner


def start_server(
    row: Row,
    source: str,
    env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> tuple[Server, Path, int | None]:
    """The row's server on ``source``; its directory, and the pid of the
    process that loads the app and never serves (a master, the reloader's
    parent), if there is one."""
    if row.kind == "gunicorn":
        gunicorn: StartGunicorn = request.getfixturevalue("gunicorn_server")
        server = gunicorn(
            source,
            workers=2,
            threads=2 if row.worker_class == "gthread" else 1,
            preload=row.preload,
            worker_class=row.worker_class,
            env=env,
        )
        return server, server.directory, server.process.pid
    if row.kind == "uwsgi":
        uwsgi: StartUWSGI = request.getfixturevalue("uwsgi_server")
        userver = uwsgi(source, processes=2, args=row.args, env=env)
        return userver, userver.directory, userver.master
    started: Started[CommandServer] = request.getfixturevalue("command_server")
    directory = started.directory(source)
    port = find_free_port()
    if row.kind == "waitress":
        command = [
            sys.executable, "-m", "waitress", f"--listen={LOOPBACK}:{port}",
            "--threads=4", "app_module:app",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "flask", "--app", "app_module", "run",
            "--host", LOOPBACK, "--port", str(port), "--no-debugger", *row.args,
        ]  # fmt: skip
    cserver = started.add(
        CommandServer(directory, command, port, {**env, "FLASK_DEBUG": "0"})
    )
    parent = cserver.process.pid if "--reload" in row.args else None
    return cserver, directory, parent


def wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        answer = http_get(server.port, "/livez", 2)
        if answer is not None and answer.status == 200:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no 200 from /livez in {START_SECONDS:g} s:\n{server.tail()}")
        time.sleep(0.1)


@dataclass
class Observed:
    """What the clients saw, and the lines the app wrote."""

    start: float
    values: list[tuple[int, Answer | None]]
    probes: list[tuple[str, Answer | None]]

    def lines(self, directory: Path, name: str) -> list[tuple[float, int, str]]:
        """``(time, pid, rest)`` of each line of ``name`` since the start."""
        path = directory / name
        if not path.exists():
            return []
        lines = []
        for line in path.read_text().splitlines():
            at, pid, *rest = line.split()
            if float(at) >= self.start:
                lines.append((float(at), int(pid), " ".join(rest)))
        return lines


def load(server: Server, client_path: str = "/value/{n}") -> Observed:
    """Concurrent load for :data:`LOAD_SECONDS`: :data:`CLIENTS` threads on
    ``client_path`` (``{n}``: a random number), a prober alternating /readyz
    and /livez."""
    start = time.time()
    deadline = time.monotonic() + LOAD_SECONDS
    values: list[tuple[int, Answer | None]] = []
    probes: list[tuple[str, Answer | None]] = []

    def client() -> None:
        while time.monotonic() < deadline:
            n = random.randrange(1, 1 << 30)
            path = client_path.format(n=n)
            values.append(
                (n, http_get(server.port, path, REQUEST_TIMEOUT, HEALTH_JSON))
            )

    def prober() -> None:
        while time.monotonic() < deadline:
            for path in ("/readyz", "/livez"):
                answer = http_get(server.port, path, REQUEST_TIMEOUT, HEALTH_JSON)
                probes.append((path, answer))

    calls = [Bounded(prober, "prober")]
    calls += [Bounded(client, f"client {i}") for i in range(CLIENTS)]
    for call in calls:
        call.result(LOAD_SECONDS + 2 * REQUEST_TIMEOUT)
    return Observed(start, values, probes)


def health_problems(answers: Sequence[Answer | None]) -> list[str]:
    """What health+json answers got wrong about the database (another
    process's answer read off a shared connection) and the process (results
    made by another one)."""
    problems = []
    for answer in answers:
        if answer is None:
            continue
        checks = json.loads(answer.body).get("checks", {})
        for database in checks.get("database", []):
            if database["status"] != "pass":
                problems.append(f"database: {database.get('output')}")
        for whoami in checks.get("whoami", []):
            if whoami.get("observedValue") != int(answer.headers["X-Pid"]):
                problems.append(
                    f"process {answer.headers['X-Pid']} answered the result of"
                    f" process {whoami.get('observedValue')}"
                )
    return problems


def answered(observed: Observed, path: str) -> list[Answer | None]:
    return [answer for p, answer in observed.probes if p == path]


def slowest(answers: Sequence[Answer | None]) -> float:
    return max((a.seconds for a in answers if a is not None), default=0.0)


def broken_promises(
    row: Row, observed: Observed, directory: Path, loader: int | None, log: str
) -> dict[int, str]:
    """Each promise the server broke (by number, 0-based), and how."""
    broken: dict[int, str] = {}
    readyz, livez = answered(observed, "/readyz"), answered(observed, "/livez")

    # 1. A probe answers within its checks' timeouts.
    if not readyz or None in readyz:
        broken[0] = f"{readyz.count(None)} of {len(readyz)} /readyz unanswered"
    elif slowest(readyz) > READY_TIMEOUT + MARGIN:
        broken[0] = f"a /readyz took {slowest(readyz):.2f} s"

    # 2. /livez never waits on a readiness check.
    if not livez or any(a is None or a.status != 200 for a in livez):
        statuses = [a.status if a else None for a in livez]
        broken[1] = f"/livez answered {statuses}"
    elif slowest(livez) >= READY_TIMEOUT:
        broken[1] = f"a /livez took {slowest(livez):.2f} s"

    # 3. One refresher and one alert per host, never one that does not serve.
    refreshers = {pid for _, pid, _ in observed.lines(directory, "ticks")}
    alerting = {pid for _, pid, _ in observed.lines(directory, "alerts")}
    problems = []
    if len(refreshers) != 1:
        problems.append(f"refreshed by processes {sorted(refreshers)}")
    if not alerting <= refreshers:
        problems.append(f"alerts sent by processes {sorted(alerting)}")
    if loader is not None and row.kind != "gunicorn":
        # uWSGI's master, the reloader's parent: never, not even at import.
        since_import = Observed(0.0, [], []).lines(directory, "ticks")
        if loader in {pid for _, pid, _ in since_import}:
            problems.append(f"{loader}, which never serves, refreshed")
    elif loader is not None and loader in refreshers:
        problems.append(f"the master ({loader}) refreshed after it forked")
    if row.kind == "uwsgi":
        holders = [p.read_text().strip() for p in (directory / "run").glob("*.lock")]
        if str(loader) in holders:
            problems.append("uWSGI's master holds the host lock")
    if problems:
        broken[2] = "; ".join(problems)

    # 4. Nothing crosses a fork: no other request's row, no 500, own results.
    values = observed.values
    wrong = [n for n, a in values if a and a.status == 200 and a.text != str(n)]
    failed = [
        a.status if a else None for _, a in values if a is None or a.status != 200
    ]
    problems = health_problems(readyz)
    if not values or wrong or failed or problems:
        broken[3] = (
            f"of {len(values)} requests to the app's own route, {len(wrong)} got"
            f" another request's row and {len(failed)} failed"
            f" {sorted(set(map(str, failed)))};"
            f" {len(problems)} of {len(readyz)} /readyz wrong: {problems[:3]}"
        )
    return broken


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            row,
            id=row.id,
            marks=[pytest.mark.xfail(reason=row.failing, run=False)]
            if row.failing
            else [],
        )
        for row in ROWS
    ],
)
@pytest.mark.slow
def test_promises(
    row: Row,
    held: Path,
    postgres_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = {"MATRIX_DATABASE_URL": psycopg_url(postgres_url), "MATRIX_HELD": str(held)}
    server, directory, loader = start_server(row, app_source(), env, tmp_path, request)
    wait_until_serving(server)
    observed = load(server)
    log = server.tail(100_000)
    broken = broken_promises(row, observed, directory, loader, log)
    readyz, livez = answered(observed, "/readyz"), answered(observed, "/livez")
    print(  # the figures, with pytest -s or -rP
        f"[{row.id}] {len(observed.values)} own requests; /readyz max"
        f" {slowest(readyz):.2f} s; /livez max {slowest(livez):.2f} s;"
        f" {broken or 'every promise kept'}"
    )
    if row.kind == "uwsgi":
        # uWSGI says whether Python threads run; where they can't, the
        # extension says so once, at ERROR, naming the flag.
        lines = log.splitlines()
        disabled = any("Python threads support is disabled" in x for x in lines)
        asked = [x for x in lines if "--enable-threads" in x and "***" not in x]
        assert len(asked) == (1 if disabled else 0), (
            f"uWSGI says threads {'can not' if disabled else 'can'} run; the"
            f" extension's lines naming --enable-threads: {asked}"
        )
    assert not broken, "\n".join(
        [*(f"{PROMISES[i]}: {how}" for i, how in sorted(broken.items())), log[-3000:]]
    )


@pytest.mark.slow
def test_the_ready_made_engine_never_shares_a_connection_across_workers(
    gunicorn_server: StartGunicorn, held: Path, postgres_url: str
) -> None:
    """Issue 16: with the ready-made engine (no Flask-SQLAlchemy) and
    ``--preload``, 553 of 5,132 probes failed on the master's connection."""
    env = {"MATRIX_DATABASE_URL": psycopg_url(postgres_url), "MATRIX_HELD": str(held)}
    server = gunicorn_server(
        app_source(flask_sqlalchemy=False),
        workers=3,
        threads=2,
        preload=True,
        worker_class="gthread",
        env=env,
    )
    wait_until_serving(server)
    observed = load(server, client_path="/health/database")
    probes = [answer for _, answer in observed.values]
    problems = health_problems(probes)
    failed = [a.status if a else None for a in probes if a is None or a.status != 200]
    print(f"[own engine, --preload] {len(failed)} of {len(probes)} probes failed")
    assert probes and not failed, (
        f"{len(failed)} of {len(probes)} failed: {problems[:5]}"
    )


def psycopg_url(url: str) -> str:
    """The fixture's URL with the psycopg 3 driver named."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


# -- the table in docs/deploying.md -------------------------------------------

DOCS = Path(__file__).parent.parent / "docs" / "deploying.md"
BEGIN = (
    "<!-- server-matrix: made by tests/test_server_matrix.py;"
    " UPDATE_DOCS=1 rewrites it -->"
)
END = "<!-- end of server-matrix -->"


def matrix_table() -> str:
    """The server × promise table: what :func:`test_promises` checks."""
    header = ["server", *PROMISES, "test"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in ROWS:
        cells = [row.notes.get(i, "✓") for i in range(len(PROMISES))]
        if row.failing:
            cells = [f"✗ not yet: {row.failing}", *["✗"] * (len(PROMISES) - 1)]
        test = f"`test_promises[{row.id}]`"
        lines.append("| " + " | ".join([row.server, *cells, test]) + " |")
    return "\n".join(lines)


def test_the_matrix_in_the_docs_is_current() -> None:
    text = DOCS.read_text()
    found = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert found is not None, f"docs/deploying.md has no {BEGIN!r} … {END!r} block"
    table = matrix_table() + "\n"
    if found.group(1) != table and os.environ.get("UPDATE_DOCS") == "1":
        DOCS.write_text(text[: found.start(1)] + table + text[found.end(1) :])
        return
    assert found.group(1) == table, (
        "The server matrix in docs/deploying.md differs from the tests'"
        " (run with UPDATE_DOCS=1 to rewrite it):\n" + table
    )
