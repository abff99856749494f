"""What handing a probe's checks to a pool thread costs, and why (issue 20).

    python benchmarks/handoff.py                # 8 children of each, about 40 s
    python benchmarks/handoff.py --children 4 --checks 20

Each figure comes from child processes of this script, the kinds taken in
turn so that all see the same load: where the kernel puts two threads that
wake each other is decided per process (on some machines it keeps them on
one CPU in some processes and not in others), so one process tells little.

- ``threads``: uncached trivial checks (``return True``) through Flask's
  test client, on a pool thread (``HEALTHCHECK_THREADS``, the default).
- ``inline``: the same checks on the request thread.
- ``floor``: each inline probe followed by a lock handed to another
  operating system thread and back: the least any hand-off adds to a
  probe, two wake-ups of a sleeping thread (on a virtual machine, a
  sleeping CPU woken by another costs tens of microseconds), and the probe
  run on caches its thread's sleep let go cold. ``threads`` minus
  ``floor`` is what handing the checks over adds beyond that.

Per child: the median probe, the CPU time per probe (a mean) of the thread
that probes and of the others (a thread that resumes on caches gone cold runs
the same Python slower), the CPU each thread was last seen on, and the
context switches per probe of each thread (``/proc/self/task/*/status``,
Linux), voluntary and involuntary. On two CPUs, one voluntary switch each
is one sleep each, the least a hand-off can do; more would mean a woken
thread found the GIL held and slept again until it was let go. On one CPU,
the woken thread preempts the one that woke it, which holds the GIL: about
three switches each way, ``floor`` included. The summary groups the
children by that: "apart" (the probing thread slept about once a probe)
or "together" (it was preempted instead). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KINDS = ("threads", "inline", "floor")


def _switches() -> dict[int, tuple[int, int]]:
    """Voluntary and involuntary context switches of each thread so far."""
    counts = {}
    for task in os.listdir("/proc/self/task"):
        fields = {}
        try:
            with open(f"/proc/self/task/{task}/status") as status:
                for line in status:
                    if "ctxt_switches" in line:
                        key, value = line.split(":")
                        fields[key] = int(value)
        except OSError:  # the thread has gone
            continue
        counts[int(task)] = (
            fields.get("voluntary_ctxt_switches", 0),
            fields.get("nonvoluntary_ctxt_switches", 0),
        )
    return counts


def _cpu(native_id: int) -> int:
    """The CPU a thread last ran on (``/proc/.../stat``, field 39)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[36])
    except OSError:  # the thread has gone
        return -1


def _per_probe(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], count: int
) -> dict[str, list[float]]:
    """Context switches per probe of each thread alive before and after."""
    return {
        str(task): [(after[task][i] - before[task][i]) / count for i in (0, 1)]
        for task in after
        if task in before
    }


def _app(kind: str, checks: int) -> Any:
    """An app with ``checks`` trivial checks, on pool threads for ``threads``."""
    from flask import Flask

    from flask_healthcheck import HealthCheck

    def trivial() -> bool:
        return True

    app = Flask(f"handoff_{kind}")
    app.config["HEALTHCHECK_THREADS"] = kind == "threads"
    health = HealthCheck(app)
    for i in range(checks):
        health.add_check(trivial, name=f"check_{i}")
    return app


def _probes(kind: str, checks: int, count: int) -> dict[str, Any]:
    """Probes of ``kind``; for ``floor``, inline ones each followed by a
    lock handed to another thread and back."""
    import _thread
    import threading

    client = _app(kind, checks).test_client()
    ping, pong = _thread.allocate_lock(), _thread.allocate_lock()
    ping.acquire()
    pong.acquire()
    warm = count // 10
    cpus: list[int] = []

    def echo() -> None:
        for i in range(warm + count):
            ping.acquire()
            if i == warm + count - 1:  # before the thread ends
                cpus.append(_cpu(threading.get_native_id()))
            pong.release()

    if kind == "floor":
        threading.Thread(target=echo, name="echo", daemon=True).start()
    times = []
    before: dict[int, tuple[int, int]] = {}
    own = process = 0.0
    for i in range(warm + count):
        if i == warm:
            before = _switches()
            own, process = time.thread_time(), time.process_time()
        start = time.perf_counter()
        client.get("/health").close()
        if kind == "floor":
            ping.release()
            pong.acquire()
        if i >= warm:
            times.append(time.perf_counter() - start)
    own = (time.thread_time() - own) / count
    process = (time.process_time() - process) / count
    switches = _per_probe(before, _switches(), count)
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    names[str(threading.get_native_id())] = "probe"
    cpus += [_cpu(int(task)) for task in switches]
    return {
        "median": statistics.median(times),
        "cpu": [own, max(process - own, 0.0)],
        "cpus": cpus,
        "switches": {names.get(t, t): s for t, s in switches.items()},
    }


def _child(kind: str, checks: int, count: int) -> None:
    print(json.dumps(_probes(kind, checks, count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=8, help="of each kind")
    parser.add_argument("--checks", type=int, default=1)
    parser.add_argument("--probes", type=int, default=2000, help="per child")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.checks, args.probes)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    print(f"# handoff - Python {sys.version.split()[0]}, {os.cpu_count()} CPUs,")
    print(f"# {args.checks} trivial check(s), load {os.getloadavg()[0]:.1f}")
    # By where the two threads ran: "apart" (the probing thread slept once a
    # probe) or "together" (preempted instead); inline probes hand nothing.
    medians: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[list[float]]] = {}
    for number in range(args.children):
        for kind in KINDS if number % 2 == 0 else KINDS[::-1]:
            command = [sys.executable, __file__, "--child", kind]
            command += ["--checks", str(args.checks), "--probes", str(args.probes)]
            out = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=300
            )
            if out.returncode:
                raise SystemExit(out.stderr)
            figures = json.loads(out.stdout)
            switches = figures["switches"]
            mode = "" if kind == "inline" else _mode(switches["probe"])
            medians.setdefault((kind, mode), []).append(figures["median"])
            cpu.setdefault((kind, mode), []).append(figures["cpu"])
            shown = " ".join(
                f"{who} {s[0]:.2f}/{s[1]:.2f}" for who, s in sorted(switches.items())
            )
            own, others = (seconds * 1e6 for seconds in figures["cpu"])
            print(
                f"{kind:8} {mode:8} {figures['median'] * 1e6:7.1f} us"
                f"  CPU time {own:.1f} + {others:.1f} us"
                f"  CPUs {figures['cpus']}  switches (vol/invol) {shown}"
            )
    print()
    if ("inline", "") not in medians:
        return
    inline = statistics.median(medians["inline", ""])
    print("median probe; mean CPU time per probe of the probing thread + the others")
    for (kind, mode), times in sorted(medians.items()):
        median = statistics.median(times)
        own, others = (statistics.median(c[i] for c in cpu[kind, mode]) for i in (0, 1))
        print(
            f"{kind:8} {mode:8} {median * 1e6:7.1f} us, {median / inline:.2f} x inline"
            f" (+{(median - inline) * 1e6:5.1f} us); CPU time"
            f" {own * 1e6:.1f} + {others * 1e6:.1f} us ({len(times)} children)"
        )


def _mode(switches: list[float]) -> str:
    """ "apart" if the probing thread slept about once a probe (the other
    thread ran on another CPU), else "together" (it was preempted)."""
    return "apart" if switches[0] >= 0.5 else "together"


if __name__ == "__main__":
    main()
