"""The batchops benchmark: is batchops as fast as a bare aiohttp loop, and small on big files?

Run ``python -m benchmarks`` from the project's folder (about ten minutes on 2 cores) or
``python -m benchmarks --quick`` (tiny sizes, one repeat, every case; well under a minute — CI
runs it to prove the benchmark still works and times nothing). What one run does:

Throughput (``--sections throughput``). For each case (C requests in flight, D ms of
server latency, N rows) the stand-in ITSM server runs in its own process
(``python -m batchops.sandbox --latency-ms D --no-log``), and, in turns within each
repeat (the order rotates from repeat to repeat and is reversed every other repeat, so no
variant always runs right after the same one; each run starts after a 1-s pause):

* ``bare``: a bare aiohttp loop in its own process — one session, a semaphore of C,
  ``TCPConnector(limit=C)`` — posting the same ``operate_ticket`` JSON for the same rows;
* ``batchops``: the real CLI, ``python -m batchops run FILE --base-url URL -c C --yes``,
  with everything on: validation, per-sn ordering, pre-check, a real SQLite checkpoint,
  progress written to a file (so the periodic-line display), the report;
* at C=100/D=0 also ``--no-checkpoint`` and ``--quiet``, for the checkpoint's and the
  progress display's cost.

Every run gets fresh RUNNING tickets under a new sn prefix, and the server's count of
applied operations must grow by N: each SUSPEND is really applied, never skipped.
Rows/s are N over the process's wall time, start-up included ("end to end"), and N over
the wall time less the interpreter start-up and imports ("net"), measured by a child
that only imports (``python -c "import batchops.cli.main, batchops.api, …"``, ``python -c
"import aiohttp"``) started right before each run and again right after, whose two
times are averaged, so that probe and run fall in the same minute of a machine whose
speed drifts.
Ratios are taken within each repeat and summarised as median (min–max).

Scale (``--sections scale``): a 1,000,000-row CSV through ``batchops plan
--no-precheck`` and through ``batchops run`` against the zero-latency stand-in: wall
time and the peak RSS of the batchops process (``ru_maxrss`` from ``wait4``).

Excel (``--sections xlsx``): a 100,000-row XLSX read by batchops (``load_batch``:
calamine, validation, fingerprint) against ``pd.read_excel(engine="openpyxl",
dtype=str)``, and its report written by batchops (``write_report``) against
``DataFrame.to_excel`` of the same table with pandas' default engine.

Everything runs on loopback; every loop is bounded by its row count and every child
process by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

__all__ = [
    "BenchConfig",
    "Case",
    "Sample",
    "Spread",
    "main",
    "parse_args",
    "ratio_spread",
    "render_table",
]

#: The stand-in server's demo credentials (``batchops.sandbox`` defaults).
#: Pause before each throughput run (not in --quick).
_SETTLE_S: Final = 1.0
SANDBOX_APP_CODE: Final = "batchops-sandbox"
SANDBOX_APP_SECRET: Final = "sandbox-secret"
SANDBOX_USER: Final = "admin"
ESB_OPERATE_PATH: Final = "/api/c/compapi/v2/itsm/operate_ticket/"
HEADER: Final = ("sn", "operator", "action_type", "action_message")
ACTION: Final = "SUSPEND"
MESSAGE: Final = "bench: mass cleanup of stale tickets"

#: Variants of one throughput case.
BARE: Final = "bare"
BATCHOPS: Final = "batchops"
NO_CHECKPOINT: Final = "no-checkpoint"
QUIET: Final = "quiet"
#: ``--baseline TREE``: the same CLI, imported from another checkout (an older commit).
BASELINE: Final = "baseline"
VARIANT_FLAGS: Final[dict[str, tuple[str, ...]]] = {
    BATCHOPS: (),
    BASELINE: (),
    NO_CHECKPOINT: ("--no-checkpoint",),
    QUIET: ("--quiet",),
}

SECTIONS: Final = ("throughput", "scale", "xlsx")
CHILD_TIMEOUT_S: Final = 900.0
SCALE_CONCURRENCY: Final = 100


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Case:
    """One throughput case: C requests in flight against D ms latency over N rows."""

    concurrency: int
    latency_ms: float
    rows: int
    variants: tuple[str, ...] = (BARE, BATCHOPS)

    @property
    def name(self) -> str:
        return f"C={self.concurrency} D={self.latency_ms:g}ms N={self.rows:,}"

    @property
    def ceiling(self) -> float | None:
        """C/D: the rows/s no client can beat against this latency (None without latency)."""
        return self.concurrency / (self.latency_ms / 1000.0) if self.latency_ms > 0 else None


def full_cases() -> tuple[Case, ...]:
    return (
        Case(50, 20.0, 5_000),
        Case(100, 0.0, 20_000, (BARE, BATCHOPS, NO_CHECKPOINT, QUIET)),
        Case(200, 100.0, 5_000),
    )


@dataclass(frozen=True)
class BenchConfig:
    """What one benchmark run does (see :func:`parse_args`)."""

    quick: bool
    repeats: int
    sections: tuple[str, ...]
    cases: tuple[Case, ...]
    scale_rows: int
    xlsx_rows: int
    workdir: Path | None
    keep: bool
    json_path: Path | None
    #: A checkout whose batchops runs as the "baseline" variant of every throughput case.
    baseline: Path | None = None


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """The benchmark's options; ``--quick`` shrinks every size and runs one repeat."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="batchops against a bare aiohttp loop, and on big CSV/XLSX files.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, 1 repeat, every case (CI smoke run)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per throughput case (default 5)"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="rows per throughput case (default: 5,000 / 20,000 / 5,000 as the issue sets)",
    )
    parser.add_argument("--scale-rows", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--xlsx-rows", type=int, default=None, help="default 100,000")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="write results")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="TREE",
        help="also run the batchops of this checkout (e.g. `git worktree add /tmp/old "
        "COMMIT`) in every throughput case, side by side: did a change cost speed?",
    )
    args = parser.parse_args(argv)

    sections = tuple(s.strip() for s in str(args.sections).split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections takes {', '.join(SECTIONS)}; got {args.sections!r}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    cases = full_cases()
    rows = args.rows if args.rows is not None else (200 if args.quick else None)
    if rows is not None:
        if rows < 1:
            parser.error("--rows must be at least 1")
        cases = tuple(Case(c.concurrency, c.latency_ms, rows, c.variants) for c in cases)
    baseline = args.baseline.resolve() if args.baseline is not None else None
    if baseline is not None:
        if not (baseline / "batchops" / "__main__.py").is_file():
            parser.error(f"--baseline {args.baseline}: no batchops package in that folder")
        cases = tuple(
            Case(c.concurrency, c.latency_ms, c.rows, (*c.variants, BASELINE)) for c in cases
        )
    scale_rows = (
        args.scale_rows if args.scale_rows is not None else (2_000 if args.quick else 1_000_000)
    )
    xlsx_rows = args.xlsx_rows if args.xlsx_rows is not None else (500 if args.quick else 100_000)
    if scale_rows < 1 or xlsx_rows < 1:
        parser.error("--scale-rows and --xlsx-rows must be at least 1")
    return BenchConfig(
        quick=bool(args.quick),
        repeats=repeats,
        sections=sections,
        cases=cases,
        scale_rows=scale_rows,
        xlsx_rows=xlsx_rows,
        workdir=args.workdir,
        keep=bool(args.keep),
        json_path=args.json_path,
        baseline=baseline,
    )


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of a few measurements."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values to summarise")
        return cls(min(values), statistics.median(values), max(values))

    def show(self, digits: int = 0, *, unit: str = "") -> str:
        med = f"{self.median:,.{digits}f}{unit}"
        if self.min == self.max:
            return med
        return f"{med} ({self.min:,.{digits}f}–{self.max:,.{digits}f})"


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Spread of per-repeat ratios ``numerators[i] / denominators[i]`` (pairs side by side)."""
    if len(numerators) != len(denominators):
        raise ValueError("ratios need one numerator per denominator")
    return Spread.of([n / d for n, d in zip(numerators, denominators, strict=True) if d > 0])


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (it reads as plain text too), columns padded to line up."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError("every row needs one cell per header")
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(headers), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(row) for row in rows]
    return "\n".join(out)


@dataclass(frozen=True)
class Target:
    """One target of the issue, checked against a measured value."""

    what: str
    value: float
    threshold: float
    at_least: bool
    shown: str

    @property
    def met(self) -> bool:
        return self.value >= self.threshold if self.at_least else self.value <= self.threshold

    def row(self) -> list[str]:
        sign = "≥" if self.at_least else "≤"
        return [
            self.what,
            self.shown,
            f"{sign} {self.threshold:g}",
            "met" if self.met else "MISSED",
        ]


# --------------------------------------------------------------------------- child processes


@dataclass(frozen=True)
class Sample:
    """One child process run: what it did and what it cost."""

    variant: str
    rows: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    exit_code: int
    server_cpu_s: float | None = None
    applied: int | None = None
    #: The start-up (interpreter + imports) of this variant, measured right before and
    #: right after this run (the mean); None where only the run-wide figure exists.
    startup_s: float | None = None

    def rate(self, startup_s: float = 0.0) -> float:
        """Rows per second over the wall time less ``startup_s`` (never below 1 ms)."""
        return self.rows / max(self.wall_s - startup_s, 1e-3)


def _proc_cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of a running process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (int(fields[11]) + int(fields[12])) / float(ticks)


def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    timeout_s: float = CHILD_TIMEOUT_S,
) -> tuple[float, float, float, int]:
    """Run a child to its end: (wall s, CPU s, peak RSS MB, exit code), from ``wait4``."""
    out: IO[bytes] | int = subprocess.DEVNULL
    err: IO[bytes] | int = subprocess.DEVNULL
    with _maybe_open(stdout) as out_file, _maybe_open(stderr) as err_file:
        out = out_file if out_file is not None else out
        err = err_file if err_file is not None else err
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        # Block in wait4 (no polling that would steal CPU from the measured processes);
        # a timer kills a child that hangs.
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    # Linux reports ru_maxrss in KiB.
    return wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode


@contextmanager
def _maybe_open(path: Path | None) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
        return
    with path.open("wb") as handle:
        yield handle


class Sandbox:
    """The stand-in ITSM server in its own process (``python -m batchops.sandbox``)."""

    def __init__(self, latency_ms: float, log_path: Path) -> None:
        self.latency_ms = latency_ms
        self.url = ""
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        # Loopback only: never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> Sandbox:
        argv = [
            sys.executable,
            "-m",
            "batchops.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--latency-ms",
            f"{self.latency_ms:g}",
            "--no-log",
        ]
        log = self._log_path.open("wb")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        log.close()
        assert self._proc.stdout is not None
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline().decode("utf-8", "replace")
            if not line:
                break
            if "listening on " in line:
                self.url = line.rsplit("listening on ", 1)[1].strip()
                break
        if not self.url:
            self.close()
            raise RuntimeError(f"the sandbox did not start; see {self._log_path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _call(self, method: str, path: str, body: object | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(request, timeout=120) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def fresh_tickets(self, prefix: str, count: int) -> None:
        """Drop every ticket and create ``count`` RUNNING ones ``PREFIX0000001``…"""
        answer = self._call(
            "POST",
            "/_sandbox/tickets",
            {"clear": True, "generate": {"prefix": prefix, "count": count}},
        )
        if answer.get("total") != count:
            raise RuntimeError(f"the sandbox seeded {answer!r}, not {count} tickets")

    def applied(self) -> int:
        """Operations the server has applied so far (counts every changed ticket)."""
        return int(self._call("GET", "/_sandbox/stats?log=0")["applied_total"])

    def cpu_seconds(self) -> float | None:
        return _proc_cpu_seconds(self.pid)


def sn_of(prefix: str, i: int) -> str:
    """The sn the sandbox's ``generate`` gives ticket ``i`` (1-based)."""
    return f"{prefix}{i:07d}"


def write_input_csv(path: Path, prefix: str, rows: int) -> Path:
    """An input file: one SUSPEND per ticket PREFIX0000001…, in ticket order."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HEADER) + "\n")
        chunk = 50_000
        for start in range(1, rows + 1, chunk):
            stop = min(start + chunk, rows + 1)
            handle.writelines(
                f"{sn_of(prefix, i)},{SANDBOX_USER},{ACTION},{MESSAGE}\n"
                for i in range(start, stop)
            )
    return path


def batchops_run_argv(
    source: Path, url: str, concurrency: int, flags: Sequence[str] = ()
) -> list[str]:
    """The real CLI, sending ``source`` to the stand-in at ``url`` without asking."""
    return [
        sys.executable,
        "-m",
        "batchops",
        "run",
        str(source),
        "--base-url",
        url,
        "--concurrency",
        str(concurrency),
        "--yes",
        *flags,
    ]


def batchops_env() -> dict[str, str]:
    """The environment of a batchops child: the sandbox's credentials, nothing inherited
    but the machine-wide lock folder when one is named (a test's own, say)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BK_", "BATCHOPS_")) or k == "BATCHOPS_LOCK_DIR"
    }
    env.update(
        BK_APP_CODE=SANDBOX_APP_CODE, BK_APP_SECRET=SANDBOX_APP_SECRET, BK_USERNAME=SANDBOX_USER
    )
    return env


#: The folder that holds the ``benchmarks`` package: it is not installed (the wheel
#: carries batchops only), so a child that imports it finds it through PYTHONPATH.
_PROJECT = Path(__file__).resolve().parents[1]


def bench_env() -> dict[str, str]:
    """The environment of a child that imports the bench itself (the bare loop)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT), env.get("PYTHONPATH", "")) if p)
    return env


# --------------------------------------------------------------------------- the bare loop


async def bare_loop(url: str, rows: Sequence[Sequence[str]], concurrency: int) -> int:
    """Post one operate_ticket per row, ``concurrency`` at a time; return the successes.

    The baseline of the issue: one session, a semaphore, ``TCPConnector(limit=C)``, the
    same JSON body batchops sends on the ESB (credentials in the body).
    """
    import aiohttp

    endpoint = url.rstrip("/") + ESB_OPERATE_PATH
    auth = {
        "bk_app_code": SANDBOX_APP_CODE,
        "bk_app_secret": SANDBOX_APP_SECRET,
        "bk_username": SANDBOX_USER,
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    ok = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(sn: str, operator: str, action: str, message: str) -> None:
            nonlocal ok
            payload = {
                **auth,
                "sn": sn,
                "operator": operator,
                "action_type": action,
                "action_message": message,
            }
            data = json.dumps(payload, ensure_ascii=False).encode()
            async with semaphore, session.post(endpoint, data=data) as response:
                body = await response.read()
            answer = json.loads(body)
            if isinstance(answer, dict) and answer.get("code") == 0:
                ok += 1

        await asyncio.gather(*(one(r[0], r[1], r[2], r[3]) for r in rows))
    return ok


def bare_main(argv: Sequence[str]) -> int:
    """``python -m benchmarks bare URL CSV C``: the baseline, as its own process."""
    url, csv_path, concurrency = argv[0], Path(argv[1]), int(argv[2])
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [row for row in reader if row]
    ok = asyncio.run(bare_loop(url, rows, concurrency))
    print(json.dumps({"rows": len(rows), "ok": ok}))
    return 0 if ok == len(rows) else 1


# --------------------------------------------------------------------------- sections


@dataclass
class Results:
    """Everything one benchmark run measured, and the text it prints."""

    startup_s: dict[str, float] = field(default_factory=dict)
    throughput: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    scale: dict[str, Sample] = field(default_factory=dict)
    xlsx: dict[str, float] = field(default_factory=dict)
    progress_us: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, config: BenchConfig, workdir: Path, say: Callable[[str], None]) -> None:
        self.config = config
        self.workdir = workdir
        self.say = say
        self.results = Results()
        self._serial = 0

    def _prefix(self, tag: str) -> str:
        self._serial += 1
        return f"{tag}{self._serial:03d}X"

    # ---------------------------------------------------------------- start-up

    def measure_startup(self) -> None:
        """Interpreter start-up plus imports, for the record and for ``--quick``.

        Each throughput run subtracts its own instead, the mean of a probe right before
        it and one right after (:meth:`_startup_probe`): on this kind of machine a
        start-up measured a few minutes apart from the runs moved every "net" ratio by up
        to 10 %.
        """
        keys = [BARE, BATCHOPS] + ([BASELINE] if self.config.baseline is not None else [])
        times: dict[str, list[float]] = {k: [] for k in keys}
        # The first round only warms the caches (and writes bytecode): it is not counted.
        for round_ in range(2 if self.config.quick else 4):
            for name in keys:
                wall = self._startup_probe(name)
                if round_:
                    times[name].append(wall)
        self.results.startup_s = {k: statistics.median(v) for k, v in times.items()}
        self.say(
            "start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.results.startup_s.items())
        )

    def _startup_probe(self, variant: str) -> float:
        """Seconds one child takes to start and import what ``variant`` imports."""
        if variant == BARE:
            code, env = "import benchmarks.bench, aiohttp", bench_env()
        else:
            # What ``python -m batchops run`` imports before it reads the file (the CLI
            # module itself imports the API lazily). The command leaves through
            # os._exit, without the interpreter's teardown, and so does the probe. The
            # baseline imports the same, from its own checkout.
            # The console moved into the cli wing; a baseline from before has it beside.
            code = (
                "import os, batchops.cli, batchops.api\n"
                "try:\n    import batchops.cli.console\n"
                "except ImportError:\n    import batchops.console\n"
                "os._exit(0)"
            )
            env = self._batchops_env(variant)
        wall, _, _, status = run_child([sys.executable, "-c", code], cwd=self.workdir, env=env)
        if status != 0:
            raise RuntimeError(f"python -c {code!r} failed")
        return wall

    # ---------------------------------------------------------------- throughput

    def throughput(self) -> None:
        by_latency: dict[float, list[Case]] = {}
        for case in self.config.cases:
            by_latency.setdefault(case.latency_ms, []).append(case)
        for latency, cases in by_latency.items():
            with Sandbox(latency, self.workdir / f"sandbox-{latency:g}ms.log") as server:
                for case in cases:
                    self._throughput_case(server, case)

    def _throughput_case(self, server: Sandbox, case: Case) -> None:
        samples: dict[str, list[Sample]] = {v: [] for v in case.variants}
        self.results.throughput[case.name] = samples
        folder = self.workdir / f"c{case.concurrency}-d{case.latency_ms:g}"
        folder.mkdir(exist_ok=True)
        for repeat in range(self.config.repeats):
            shift = repeat % len(case.variants)
            order = case.variants[shift:] + case.variants[:shift]
            if repeat % 2:
                # Rotation alone keeps every variant behind the same neighbour (batchops
                # always ran right after the bare loop's burst); reversing every other
                # repeat gives each variant each neighbour.
                order = order[::-1]
            for variant in order:
                # Let the previous run's sockets close and the server settle first.
                time.sleep(0.0 if self.config.quick else _SETTLE_S)
                sample = self._one_run(server, case, variant, folder)
                samples[variant].append(sample)
                self.say(
                    f"  {case.name} {variant:13s} repeat {repeat + 1}: "
                    f"{sample.rate():7,.0f} rows/s e2e, {sample.wall_s:6.2f} s, "
                    f"exit {sample.exit_code}"
                )

    def _batchops_env(self, variant: str) -> dict[str, str]:
        """A batchops child's environment, batchops imported from this checkout or the baseline.

        Both put their checkout first on the import path (as the start-up probes do), so the
        two variants differ in nothing but the code they import.
        """
        env = batchops_env()
        tree = self.config.baseline if variant == BASELINE else None
        env["PYTHONPATH"] = str(tree or _PROJECT)
        return env

    def _one_run(self, server: Sandbox, case: Case, variant: str, folder: Path) -> Sample:
        prefix = self._prefix("B" if variant == BARE else "O")
        server.fresh_tickets(prefix, case.rows)
        source = write_input_csv(folder / f"{prefix}.csv", prefix, case.rows)
        if variant == BARE:
            argv = [sys.executable, "-m", "benchmarks", "bare", server.url, str(source)]
            argv.append(str(case.concurrency))
            env = bench_env()
        else:
            argv = batchops_run_argv(source, server.url, case.concurrency, VARIANT_FLAGS[variant])
            env = self._batchops_env(variant)
        # This run's own start-up: the mean of a probe right before it and one right
        # after, so it follows the machine's drift across the run (see measure_startup).
        startup = self._startup_probe(variant)
        applied_before = server.applied()
        cpu_before = server.cpu_seconds()
        wall, cpu, rss, status = run_child(
            argv,
            cwd=folder,
            env=env,
            stdout=folder / f"{prefix}.out",
            stderr=folder / f"{prefix}.err",
        )
        cpu_after = server.cpu_seconds()
        applied = server.applied() - applied_before
        startup = (startup + self._startup_probe(variant)) / 2
        server_cpu = (
            cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        )
        sample = Sample(
            variant, case.rows, wall, cpu, rss, status, server_cpu, applied, startup_s=startup
        )
        if status != 0 or applied != case.rows:
            self.results.problems.append(
                f"{case.name} {variant} ({prefix}): exit {status}, {applied} of {case.rows} "
                f"operations applied; see {folder / (prefix + '.err')}"
            )
        return sample

    # ---------------------------------------------------------------- scale

    def scale(self) -> None:
        rows = self.config.scale_rows
        folder = self.workdir / "scale"
        folder.mkdir(exist_ok=True)
        prefix = self._prefix("S")
        source = write_input_csv(folder / "scale.csv", prefix, rows)
        self.say(f"scale: {rows:,}-row CSV written ({source.stat().st_size / 2**20:.0f} MB)")
        plan = self._scale_child(
            "plan",
            [sys.executable, "-m", "batchops", "plan", str(source), "--no-precheck"],
            folder,
            rows,
        )
        self.results.scale["plan"] = plan
        with Sandbox(0.0, self.workdir / "sandbox-scale.log") as server:
            server.fresh_tickets(prefix, rows)
            before = server.applied()
            cpu_before = server.cpu_seconds()
            argv = batchops_run_argv(source, server.url, SCALE_CONCURRENCY)
            run = self._scale_child("run", argv, folder, rows, env=batchops_env())
            applied = server.applied() - before
            cpu_after = server.cpu_seconds()
        server_cpu = (
            cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        )
        run = Sample(
            run.variant,
            rows,
            run.wall_s,
            run.cpu_s,
            run.max_rss_mb,
            run.exit_code,
            server_cpu,
            applied,
        )
        if applied != rows:
            self.results.problems.append(f"scale run: {applied} of {rows} operations applied")
        self.results.scale["run"] = run

    def _scale_child(
        self,
        name: str,
        argv: list[str],
        folder: Path,
        rows: int,
        env: dict[str, str] | None = None,
    ) -> Sample:
        wall, cpu, rss, status = run_child(
            argv, cwd=folder, env=env, stdout=folder / f"{name}.out", stderr=folder / f"{name}.err"
        )
        if status != 0:
            self.results.problems.append(
                f"scale {name}: exit {status}; see {folder / (name + '.err')}"
            )
        self.say(f"  scale {name}: {wall:.1f} s, peak RSS {rss:,.0f} MB, exit {status}")
        return Sample(name, rows, wall, cpu, rss, status)

    # ---------------------------------------------------------------- xlsx

    def xlsx(self) -> None:
        import pandas as pd

        from batchops.model import Outcome, OutcomeTable, Status
        from batchops.report.writing import write_report
        from batchops.sheet.loading import load_batch

        rows = self.config.xlsx_rows
        folder = self.workdir / "xlsx"
        folder.mkdir(exist_ok=True)
        source = _write_input_xlsx(folder / "input.xlsx", self._prefix("X"), rows)
        times: dict[str, list[float]] = {
            "read": [],
            "read_pandas": [],
            "write": [],
            "write_pandas": [],
        }
        # openpyxl is slow: one pandas measurement per run keeps the bench short.
        pandas_repeats = 1
        ours_repeats = self.config.repeats

        batch = None
        for _ in range(ours_repeats):
            started = time.perf_counter()
            batch = load_batch(source)
            times["read"].append(time.perf_counter() - started)
        assert batch is not None
        if len(batch) != rows or batch.invalid_count():
            self.results.problems.append(
                f"xlsx: read {len(batch)} rows, {batch.invalid_count()} invalid"
            )
        for _ in range(pandas_repeats):
            started = time.perf_counter()
            theirs = pd.read_excel(source, engine="openpyxl", dtype=str)
            times["read_pandas"].append(time.perf_counter() - started)
            if len(theirs) != rows:
                self.results.problems.append(f"xlsx: pandas read {len(theirs)} rows")
            del theirs

        outcomes = OutcomeTable(rows)
        finished = "2025-01-01T12:00:00+08:00"
        for i in range(rows):
            outcomes.set(
                i,
                Outcome(Status.SUCCESS, 0, "success", 1, 200, f"{i:032x}", 21.5, finished),
            )
        table = batch.frame.copy()
        for name, values in outcomes.columns().items():
            table[name if name not in table.columns else f"result_{name}"] = values
        for _ in range(ours_repeats):
            started = time.perf_counter()
            write_report(batch.frame, outcomes, folder / "report.xlsx")
            times["write"].append(time.perf_counter() - started)
        for _ in range(pandas_repeats):
            started = time.perf_counter()
            table.to_excel(folder / "pandas.xlsx", index=False)
            times["write_pandas"].append(time.perf_counter() - started)
        self.results.xlsx = {k: statistics.median(v) for k, v in times.items()}
        self._workbook_report(source, folder)
        x = self.results.xlsx
        self.say(
            f"xlsx {rows:,} rows: read {x['read']:.2f} s "
            f"(pandas/openpyxl {x['read_pandas']:.2f} s), "
            f"report {x['write']:.2f} s (pandas to_excel {x['write_pandas']:.2f} s)"
        )

    def _workbook_report(self, source: Path, folder: Path) -> None:
        """The report of the XLSX input as ``run`` writes it (since issue 23 into the input's
        own workbook), by this checkout and, with ``--baseline``, by that one: each in a
        child of its own on the same file, alternating, so the two share the machine's mood."""
        variants = [BATCHOPS] + ([BASELINE] if self.config.baseline is not None else [])
        found: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(self.config.repeats):
            for variant in variants:
                # The script by its path (a baseline's checkout has a benchmarks package of
                # its own), batchops from the variant's checkout.
                argv = [sys.executable, str(_PROJECT / "benchmarks" / "report_time.py")]
                argv += ["0", "1", "--workbook", str(source)]
                out = folder / f"workbook-{variant}.out"
                env = self._batchops_env(variant)
                *_unused, status = run_child(argv, cwd=folder, env=env, stdout=out)
                if status != 0:
                    self.results.problems.append(f"xlsx workbook report ({variant}): exit {status}")
                    return
                found[variant].append(float(out.read_text().split()[-1]))
        for variant, values in found.items():
            self.results.xlsx[f"workbook_{variant}"] = statistics.median(values)
            self.say(f"  workbook report, {variant}: {', '.join(f'{v:.2f}' for v in values)} s")

    # ---------------------------------------------------------------- progress, in-process

    def progress_micro(self) -> None:
        """Cost of one ``advance()`` of each progress display, in-process, in µs."""
        from batchops.cli.console import BarProgress, LineProgress
        from batchops.model import Status
        from batchops.run import NullProgress, ProgressSink

        n = 20_000 if self.config.quick else 200_000
        sinks: dict[str, Callable[[], ProgressSink]] = {
            "none": NullProgress,
            "lines": lambda: LineProgress(io.StringIO(), interval_s=10.0),
            "bar": lambda: BarProgress(io.StringIO()),
        }
        for name, make in sinks.items():
            best = math.inf
            for _ in range(3):
                sink = make()
                sink.start(n)
                advance = sink.advance
                started = time.perf_counter()
                for _ in range(n):
                    advance(Status.SUCCESS)
                best = min(best, time.perf_counter() - started)
                sink.close()
            self.results.progress_us[name] = best / n * 1e6


def _write_input_xlsx(path: Path, prefix: str, rows: int) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("tickets")
    for col, name in enumerate((*HEADER, "title")):
        sheet.write_string(0, col, name)
    for i in range(1, rows + 1):
        sheet.write_string(i, 0, sn_of(prefix, i))
        sheet.write_string(i, 1, SANDBOX_USER)
        sheet.write_string(i, 2, ACTION)
        sheet.write_string(i, 3, MESSAGE)
        sheet.write_string(i, 4, f"工单 {i} 长期未处理")
    book.close()
    return path


# --------------------------------------------------------------------------- the report


def _net(results: Results, sample: Sample) -> float:
    if sample.startup_s is not None:
        return sample.rate(sample.startup_s)
    key = sample.variant if sample.variant in (BARE, BASELINE) else BATCHOPS
    return sample.rate(results.startup_s.get(key, 0.0))


def report(config: BenchConfig, results: Results) -> tuple[str, list[Target]]:
    """The tables of one run, and the issue's targets judged against them."""
    parts: list[str] = []
    targets: list[Target] = []
    start = results.startup_s
    if config.quick:
        parts.append(
            "QUICK MODE: toy sizes prove that every case runs; these figures measure nothing "
            "(the net rates subtract a start-up longer than the work)."
        )
    if results.throughput:
        parts.append(
            f"Throughput — rows/s, median (min–max) of {config.repeats} repeat(s). e2e: whole "
            f"process; net: less the start-up (interpreter + imports) measured right before "
            f"and after each run (run-wide medians: bare {start.get(BARE, 0):.2f} s, batchops "
            f"{start.get(BATCHOPS, 0):.2f} s)."
        )
        if config.baseline is not None:
            parts.append(
                f"baseline: the batchops of {config.baseline} (start-up "
                f"{start.get(BASELINE, 0):.2f} s), against the same stand-in and bare loop."
            )
        rows: list[list[str]] = []
        for case in config.cases:
            samples = results.throughput.get(case.name)
            if not samples:
                continue
            for variant in case.variants:
                ss = samples[variant]
                cpu_row = statistics.median(s.cpu_s for s in ss) / case.rows * 1e6
                server = [s.server_cpu_s for s in ss if s.server_cpu_s is not None]
                server_row = statistics.median(server) / case.rows * 1e6 if server else math.nan
                ceiling = case.ceiling
                net = Spread.of([_net(results, s) for s in ss])
                rows.append(
                    [
                        case.name,
                        variant,
                        Spread.of([s.rate() for s in ss]).show(),
                        net.show(),
                        f"{net.median / ceiling:.2f}" if ceiling else "-",
                        f"{cpu_row:,.0f}",
                        f"{server_row:,.0f}",
                        f"{statistics.median(s.max_rss_mb for s in ss):,.0f}",
                    ]
                )
        parts.append(
            render_table(
                [
                    "case",
                    "variant",
                    "rows/s e2e",
                    "rows/s net",
                    "net ÷ C/D",
                    "client CPU µs/row",
                    "server CPU µs/row",
                    "peak RSS MB",
                ],
                rows,
            )
        )
        ratio_rows: list[list[str]] = []
        for case in config.cases:
            samples = results.throughput.get(case.name)
            if not samples:
                continue
            pairs = [(BATCHOPS, BARE, "batchops ÷ bare")]
            if NO_CHECKPOINT in samples:
                pairs.append((BATCHOPS, NO_CHECKPOINT, "checkpoint on ÷ off"))
            if QUIET in samples:
                pairs.append((BATCHOPS, QUIET, "progress on ÷ --quiet"))
            if BASELINE in samples:
                pairs.append((BASELINE, BARE, "baseline ÷ bare"))
                pairs.append((BATCHOPS, BASELINE, "batchops ÷ baseline"))
            for num, den, label in pairs:
                e2e = ratio_spread(
                    [s.rate() for s in samples[num]], [s.rate() for s in samples[den]]
                )
                net = ratio_spread(
                    [_net(results, s) for s in samples[num]],
                    [_net(results, s) for s in samples[den]],
                )
                ratio_rows.append([case.name, label, e2e.show(3), net.show(3)])
                targets.extend(_throughput_targets(case, label, e2e, net))
        parts.append("Ratios, per repeat side by side, median (min–max):")
        parts.append(render_table(["case", "ratio", "e2e", "net"], ratio_rows))
    if results.progress_us:
        us = results.progress_us
        budget = _per_row_budget_us(config, results)
        shown = []
        for name in ("lines", "bar"):
            extra = us[name] - us["none"]
            share = extra / budget * 100 if budget else math.nan
            shown.append(
                [name, f"{us[name]:.2f}", f"{extra:.2f}", f"{share:.2f}%" if budget else "-"]
            )
            if name == "lines" and budget:
                targets.append(
                    Target(
                        "progress display (periodic lines), in-process share of a row",
                        share,
                        2.0,
                        False,
                        f"{share:.2f}%",
                    )
                )
        parts.append(
            "Progress display, in-process: µs per advance() (NullProgress "
            f"{us['none']:.2f} µs), share of a row's time at the measured "
            f"batchops rate ({budget:,.0f} µs/row at C=100 D=0):"
            if budget
            else "Progress display, in-process: µs per advance():"
        )
        parts.append(render_table(["display", "µs/row", "extra µs/row", "share of a row"], shown))
    if results.scale:
        rows = []
        for name, sample in results.scale.items():
            rows.append(
                [
                    f"batchops {name}" + (" --no-precheck" if name == "plan" else " (C=100, D=0)"),
                    f"{sample.rows:,}",
                    f"{sample.wall_s:,.1f}",
                    f"{sample.rows / sample.wall_s:,.0f}",
                    f"{sample.cpu_s:,.1f}",
                    f"{sample.max_rss_mb:,.0f}",
                ]
            )
            targets.append(
                Target(
                    f"peak RSS, {sample.rows:,}-row CSV, batchops {name} (MB)",
                    sample.max_rss_mb,
                    500.0,
                    False,
                    f"{sample.max_rss_mb:,.0f} MB",
                )
            )
        parts.append("Big CSV (one run each):")
        parts.append(
            render_table(["command", "rows", "wall s", "rows/s", "CPU s", "peak RSS MB"], rows)
        )
    if results.xlsx:
        x = results.xlsx
        read_speedup = x["read_pandas"] / x["read"]
        write_share = x["write"] / x["write_pandas"]
        parts.append(f"Excel, {config.xlsx_rows:,} rows (seconds; batchops median of repeats):")
        parts.append(
            render_table(
                ["step", "batchops s", "pandas s", "pandas ÷ batchops"],
                [
                    [
                        "read (load_batch vs read_excel openpyxl dtype=str)",
                        f"{x['read']:.2f}",
                        f"{x['read_pandas']:.2f}",
                        f"{read_speedup:.1f}×",
                    ],
                    [
                        f"write report (write_report vs to_excel, engine {_pandas_writer()})",
                        f"{x['write']:.2f}",
                        f"{x['write_pandas']:.2f}",
                        f"{1 / write_share:.1f}×",
                    ],
                ],
            )
        )
        if "workbook_batchops" in x:
            rows_ = [
                ["report of the XLSX input, as run writes it", f"{x['workbook_batchops']:.2f}"]
            ]
            if "workbook_baseline" in x:
                ratio = x["workbook_batchops"] / x["workbook_baseline"]
                rows_[0] += [f"{x['workbook_baseline']:.2f}", f"{ratio:.2f}"]
                targets.append(
                    Target(
                        "XLSX report: batchops ÷ baseline (issue 23)",
                        ratio,
                        2.0,
                        False,
                        f"{ratio:.2f}",
                    )
                )
            else:
                rows_[0] += ["—", "—"]
            parts.append(
                render_table(["step", "batchops s", "baseline s", "batchops ÷ baseline"], rows_)
            )
        targets.append(
            Target(
                "XLSX read: pandas/openpyxl ÷ batchops",
                read_speedup,
                5.0,
                True,
                f"{read_speedup:.1f}×",
            )
        )
        # The report-write target (≤ 0.5 of to_excel) was withdrawn with issue 10: the report
        # is written through xlsxwriter's public API only, and writing it is under 1% of a
        # run against a real ITSM. The time is still shown above, side by side, unjudged.
    if targets:
        parts.append("Targets:")
        parts.append(render_table(["target", "measured", "wanted", ""], [t.row() for t in targets]))
    if results.problems:
        parts.append("PROBLEMS:\n" + "\n".join(f"- {p}" for p in results.problems))
    return "\n\n".join(parts), targets


def _throughput_targets(case: Case, label: str, e2e: Spread, net: Spread) -> list[Target]:
    wanted: float | None = None
    if label == "batchops ÷ bare":
        wanted = 0.75 if case.latency_ms == 0 else 0.9
    elif label == "checkpoint on ÷ off":
        wanted = 0.9
    # "progress on ÷ --quiet" has no target here: a cost of 2% is far inside the 10-15%
    # by which two runs' wall times differ on this machine. The display's target is
    # judged in-process (progress_micro), where the cost can be resolved.
    if wanted is None:
        return []
    return [
        Target(f"{label}, {case.name}, e2e", e2e.median, wanted, True, f"{e2e.median:.3f}"),
        Target(f"{label}, {case.name}, net", net.median, wanted, True, f"{net.median:.3f}"),
    ]


def _per_row_budget_us(config: BenchConfig, results: Results) -> float:
    """µs one row takes at batchops' measured rate, C=100 D=0 (0 when not measured)."""
    for case in config.cases:
        if case.latency_ms == 0 and case.name in results.throughput:
            samples = results.throughput[case.name][BATCHOPS]
            rate = statistics.median(_net(results, s) for s in samples)
            return 1e6 / rate if rate > 0 else 0.0
    return 0.0


def _pandas_writer() -> str:
    import importlib.util

    return "xlsxwriter" if importlib.util.find_spec("xlsxwriter") else "openpyxl"


def machine() -> str:
    """nproc, CPU model and Python version, for the record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, {sys.platform}"


def load_average() -> str:
    """The 1-minute load average: other work on the machine shows up in every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------- main


def run(config: BenchConfig, say: Callable[[str], None]) -> tuple[str, list[Target]]:
    """Run the sections ``config`` asks for; return the printed report and the targets."""
    owned = config.workdir is None
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="batchops-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"machine: {machine()}; load average {load_average()}; work folder {workdir}")
    _compile_package(config.baseline)
    bench = Bench(config, workdir, say)
    started = time.perf_counter()
    try:
        if "throughput" in config.sections:
            bench.measure_startup()
            bench.throughput()
            bench.progress_micro()
        if "scale" in config.sections:
            bench.scale()
        if "xlsx" in config.sections:
            bench.xlsx()
    finally:
        if owned and not config.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text, targets = report(config, bench.results)
    text = (
        f"machine: {machine()}; load average at the end {load_average()}\n\n{text}"
        f"\n\nbench wall time {time.perf_counter() - started:,.0f} s"
    )
    if config.json_path is not None:
        config.json_path.write_text(
            json.dumps(_as_json(config, bench.results), indent=2, ensure_ascii=False)
        )
    if bench.results.problems:
        raise SystemExit(text + "\n\nthe benchmark found problems (see PROBLEMS)")
    return text, targets


def _compile_package(baseline: Path | None = None) -> None:
    """Write batchops' (and the bench's) bytecode, as ``pip install`` does for a package.

    An editable checkout has none until a run writes it, and an environment with
    PYTHONDONTWRITEBYTECODE set never writes it: every child would then compile the
    package from source (80 ms), which no installed copy of the tool does.
    """
    import compileall

    import batchops

    packages = [Path(batchops.__file__).resolve().parent, Path(__file__).resolve().parent]
    if baseline is not None:
        packages.append(baseline / "batchops")
    for package in packages:
        compileall.compile_dir(str(package), quiet=1)


def _as_json(config: BenchConfig, results: Results) -> dict[str, Any]:
    def sample(s: Sample) -> dict[str, Any]:
        return dataclasses.asdict(s)

    return {
        "machine": machine(),
        "repeats": config.repeats,
        "baseline": str(config.baseline) if config.baseline is not None else None,
        "startup_s": results.startup_s,
        "throughput": {
            case: {v: [sample(s) for s in ss] for v, ss in variants.items()}
            for case, variants in results.throughput.items()
        },
        "scale": {k: sample(s) for k, s in results.scale.items()},
        "xlsx": results.xlsx,
        "progress_us": results.progress_us,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["bare"]:
        return bare_main(args[1:])
    config = parse_args(args)
    import importlib.util

    if importlib.util.find_spec("openpyxl") is None:
        # Only the benchmark reads XLSX with pandas; batchops itself never needs openpyxl.
        print(
            "Error: the benchmark compares against pandas.read_excel, which needs openpyxl: "
            "pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    text, _ = run(config, say)
    print(text)
    return 0
