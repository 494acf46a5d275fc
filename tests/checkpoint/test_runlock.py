"""One run per ticket set and target on the machine: the key (:func:`normal_target`,
:func:`ticket_set`), :class:`RunLock` and its machine-wide folder in this process, then
with two real batchops processes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.checkpoint.machine import LOCK_DIR_ENV, SharedFolder, default_folder
from batchops.checkpoint.runlock import RunLock, lock_key, normal_target, ticket_set
from batchops.errors import RunInProgressError
from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, host_env, running, seed, write_csv

ROWS = 12
URL = "http://itsm.example:8080"
SNS = ["S1", "S2", "S3"]


@pytest.mark.parametrize(
    "spelling",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080/",
        "HTTP://LocalHost:8080/.",
        "http://localhost:8080/./",
        "http://[::1]:8080//",
        "http://127.0.0.2:8080",
        "http://127.1:8080",
        "http://0.0.0.0:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://localhost.:8080",
        "http://user:password@localhost:8080",
        " http://localhost:8080/a/.. ",
    ],
)
def test_every_spelling_of_this_machine_is_one_target(spelling: str) -> None:
    """localhost, 127.0.0.1, ::1 (and the other loopback spellings the resolver takes),
    any case, a trailing slash or a dot segment: one target, with no password kept."""
    assert normal_target(spelling) == "http://localhost:8080"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://itsm.example", "https://ITSM.example:443/"),
        ("http://itsm.example", "http://itsm.example:80"),
        ("http://bücher.example/itsm", "http://xn--bcher-kva.example/itsm/"),
        ("http://BÜCHER.example./itsm", "http://bücher.example/itsm"),
        ("http://h.example/a/b/../c/./", "http://h.example/a/c"),
        ("http://h.example//a//c//", "http://h.example/a/c"),
        ("http://h.example/%7Euser", "http://h.example/~user"),
        ("http://[2001:DB8::1]:8080", "http://[2001:db8:0::1]:8080/"),
    ],
)
def test_spellings_of_one_address_are_one_target(one: str, other: str) -> None:
    """Host case and IDNA, the default port, dot segments, repeated and trailing slashes
    and percent-encoding of unreserved characters do not make another target."""
    assert normal_target(one) == normal_target(other)


@pytest.mark.parametrize(
    "other",
    [
        "http://itsm.example:8081",
        "https://itsm.example:8080",
        "http://itsm2.example:8080",
        "http://itsm.example:8080/prefix",
        "http://10.0.0.1:8080",
    ],
)
def test_other_addresses_are_other_targets(other: str) -> None:
    assert normal_target(other) != normal_target(URL)


_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
_SEGMENT = st.from_regex(r"[A-Za-z0-9_~-]{1,8}", fullmatch=True)


@given(
    labels=st.lists(_LABEL, min_size=1, max_size=4),
    scheme=st.sampled_from(["http", "https"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    segments=st.lists(_SEGMENT, max_size=4),
    dots=st.lists(st.integers(0, 4), max_size=3),
)
def test_respelling_an_address_keeps_its_target(
    labels: list[str],
    scheme: str,
    port: int | None,
    segments: list[str],
    dots: list[int],
) -> None:
    """Any address: upper-casing scheme and host, writing the default port out, adding
    ``/.`` segments and a trailing slash give the same target, and a target is its own."""
    host = ".".join(labels)
    path = "".join(f"/{s}" for s in segments)
    plain = f"{scheme}://{host}{f':{port}' if port else ''}{path}"
    spelled_port = port or (443 if scheme == "https" else 80)
    parts = [f"/{s}" for s in segments]
    for at in dots:
        parts.insert(min(at, len(parts)), "/.")
    respelled = f"{scheme.upper()}://{host.upper()}:{spelled_port}{''.join(parts)}/"
    target = normal_target(plain)
    assert normal_target(respelled) == target
    assert normal_target(target) == target
    assert "localhost" not in target or "localhost" in host


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30), st.randoms())
def test_a_ticket_set_is_its_sns_in_any_order_and_number(sns: list[str], rnd: object) -> None:
    """The same sns in another order, some of them twice: one ticket set; one sn more or
    fewer: another."""
    shuffled = list(sns) + sns[: len(sns) // 2]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert ticket_set(shuffled) == ticket_set(sns)
    assert ticket_set([*sns, "another sn not in the list \u2603"]) != ticket_set(sns)
    if len(set(sns)) > 1:
        assert ticket_set(sns[1:]) != ticket_set(sns) or sns[0] in sns[1:]


def test_the_key_is_the_tickets_and_the_target_not_the_file_or_the_spelling() -> None:
    """Nothing of the file's name or folder goes into the key: the same tickets against
    the same target are one lock, another target or another ticket set another."""
    one = RunLock(URL, SNS)
    assert RunLock(" HTTP://ITSM.example:8080/ ", ["S3", "S1", "S2", "S1"]).key == one.key
    assert RunLock(URL, ["S1", "S2"]).key != one.key
    assert RunLock("http://itsm.example:8081", SNS).key != one.key
    assert one.key == lock_key(normal_target(URL), ticket_set(SNS))


def test_a_second_lock_on_one_key_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """While one RunLock holds the tickets and target, another is refused with the
    holder's PID and that nothing was sent; release() lets the next one in."""
    folder = tmp_path / "machine"
    first = RunLock(URL, SNS, folder).acquire()
    second = RunLock(URL + "/", list(reversed(SNS)), folder)
    with pytest.raises(RunInProgressError) as refused:
        second.acquire()
    assert f"PID {os.getpid()}" in str(refused.value)
    assert "nothing was sent" in str(refused.value)
    assert "http://itsm.example:8080" in str(refused.value)
    RunLock(URL, ["S9"], folder).acquire().release()  # other keys go on
    first.release()
    first.release()  # a second release is harmless
    second.acquire()
    second.release()


@pytest.mark.parametrize("content", ["", "12ab\n"], ids=["empty", "garbled"])
def test_a_holder_whose_pid_cannot_be_read_is_named_as_unknown(
    tmp_path: Path, content: str
) -> None:
    """A refusal while the lock file holds no PID yet (it is written just after the lock
    is taken) or an unreadable one says the PID is not known yet, never a wrong one."""
    folder = tmp_path / "machine"
    first = RunLock(URL, SNS, folder).acquire()
    try:
        lock_file = folder / first.name
        lock_file.write_text(content, encoding="utf-8")
        with pytest.raises(RunInProgressError, match="PID not known yet"):
            RunLock(URL, SNS, folder).acquire()
    finally:
        first.release()


def test_the_folder_is_shared_by_every_user_and_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$BATCHOPS_LOCK_DIR, else one place of the machine that no user's own settings
    move (not XDG_STATE_HOME, HOME or TMPDIR); created world-writable and sticky, like
    /tmp, and the lock file usable by every user."""
    assert default_folder({LOCK_DIR_ENV: "/x/locks", "XDG_STATE_HOME": "/s"}) == Path("/x/locks")
    if os.name == "posix":
        machine = default_folder({"XDG_STATE_HOME": "/s", "HOME": "/h", "TMPDIR": "/t"})
        assert machine in (Path("/var/tmp/batchops"), Path("/tmp/batchops"))
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "made" / "here"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    lock = RunLock(URL, SNS).acquire()
    try:
        folder = tmp_path / "made" / "here"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o1777
        assert stat.S_IMODE((folder / lock.name).stat().st_mode) == 0o666
        assert (folder / lock.name).read_text() == f"{os.getpid()}\n"
        assert not (tmp_path / "state").exists()
    finally:
        lock.release()


def test_an_unsafe_folder_is_refused(tmp_path: Path) -> None:
    """A symbolic link where the folder should be, or a folder others may write that is
    not sticky (anyone could remove a running batchops' lock): refused, one line that
    says what to do; a file that cannot be a folder too."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    with pytest.raises(RunInProgressError, match="symbolic link") as refused:
        RunLock(URL, SNS, link).acquire()
    assert LOCK_DIR_ENV in str(refused.value)
    assert list(elsewhere.iterdir()) == []
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    with pytest.raises(RunInProgressError, match="not sticky"):
        RunLock(URL, SNS, open_folder).acquire()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(RunInProgressError, match=LOCK_DIR_ENV):
        RunLock(URL, SNS, blocked).acquire()


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "fifo"])
def test_a_file_planted_under_the_locks_name_is_never_written(tmp_path: Path, plant: str) -> None:
    """Another user may create the lock's name first: a symbolic link or a hard link to
    a file of ours, or a FIFO. The lock is refused (one line), the file it points at is
    left as it was, and nothing hangs."""
    folder = tmp_path / "machine"
    SharedFolder.open(folder).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    name = RunLock(URL, SNS, folder).name
    if plant == "symlink":
        (folder / name).symlink_to(victim)
    elif plant == "hardlink":
        os.link(victim, folder / name)
    else:
        os.mkfifo(folder / name)
    with pytest.raises(RunInProgressError, match="cannot take the run lock"):
        RunLock(URL, SNS, folder).acquire()
    assert victim.read_text() == "precious\n"


def _env(url: str) -> dict[str, str]:
    env = host_env()
    env.update(creds_env(url))
    return env


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchops", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(cwd),
    )


def _wait_for_operations(server: SandboxThread, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while server.state.stats.operations_total == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first run never started sending"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "second_args",
    [["--no-checkpoint"], ["--checkpoint", "other.db"]],
    ids=["no-checkpoint", "other-checkpoint"],
)
def test_second_run_of_the_same_sheet_is_refused(
    itsm: SandboxThread, tmp_path: Path, second_args: list[str]
) -> None:
    """While one process runs a sheet, a second one on the same sheet and target (whatever
    its checkpoint) exits 2 naming the first one's PID, and sends nothing: every ticket is
    operated exactly once."""
    sns = [f"LK{i:03d}" for i in range(ROWS)]
    seed(itsm, *(running(sn) for sn in sns))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=1000)))
    sheet = write_csv(tmp_path / "t.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])
    env = _env(itsm.url)
    first = _start(["run", str(sheet), "-c", "2", "--checkpoint", "first.db"], env, tmp_path)
    try:
        _wait_for_operations(itsm, first)
        second = subprocess.run(
            [sys.executable, "-m", "batchops", "run", str(sheet), "-c", "2", *second_args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=60,
        )
        still_running = first.poll() is None
    finally:
        out, err = first.communicate(timeout=60)
    assert still_running, "the test needs the first run to outlast the second"
    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert "nothing was sent" in second.stderr
    assert first.returncode == 0, out + err
    assert itsm.state.stats.operations_total == ROWS
    assert all(len(itsm.state.stats.ops_for(sn)) == 1 for sn in sns)
    assert itsm.state.stats.double_suspends == 0


def test_lock_is_released_when_a_run_ends(itsm: SandboxThread, tmp_path: Path) -> None:
    """After a run ends (here: killed), the next run of the same sheet is let in."""
    seed(itsm, running("LK1"))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=2000)))
    sheet = write_csv(tmp_path / "t.csv", [["LK1", "admin", "SUSPEND", "x"]])
    env = _env(itsm.url)
    first = _start(["run", str(sheet), "--no-precheck"], env, tmp_path)
    _wait_for_operations(itsm, first)
    first.kill()
    first.communicate(timeout=30)
    itsm.call(lambda: itsm.state.set_faults(Faults()))
    again = subprocess.run(
        [sys.executable, "-m", "batchops", "run", str(sheet), "--timeout", "3"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "another batchops run" not in again.stderr


def test_copies_of_a_sheet_against_two_spellings_of_one_target_are_one_run(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Two users' shells: a copy of the sheet in another folder, the target spelled
    ``http://localhost:P/`` instead of ``http://127.0.0.1:P``, another XDG_STATE_HOME
    (sudo, cron). The second run is refused (exit 2, naming the first's PID, one line)
    and sends nothing: no ticket is suspended twice."""
    sns = [f"CP{i:03d}" for i in range(ROWS)]
    seed(itsm, *(running(sn) for sn in sns))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=1000)))
    rows = [[sn, "admin", "SUSPEND", "x"] for sn in sns]
    (tmp_path / "alice").mkdir()
    sheet = write_csv(tmp_path / "alice" / "t.csv", rows)
    copy = tmp_path / "bob" / "copy of t.csv"
    copy.parent.mkdir()
    shutil.copy(sheet, copy)
    first_env = _env(itsm.url) | {"XDG_STATE_HOME": str(tmp_path / "alice" / "state")}
    port = itsm.url.rsplit(":", 1)[1]
    second_env = _env(f"http://localhost:{port}/") | {
        "XDG_STATE_HOME": str(tmp_path / "bob" / "state")
    }
    assert first_env[LOCK_DIR_ENV] == second_env[LOCK_DIR_ENV]  # one machine
    first = _start(["run", str(sheet), "-c", "2"], first_env, sheet.parent)
    try:
        _wait_for_operations(itsm, first)
        second = subprocess.run(
            [sys.executable, "-m", "batchops", "run", str(copy), "-c", "2"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=second_env,
            cwd=str(copy.parent),
            timeout=60,
        )
        still_running = first.poll() is None
    finally:
        out, err = first.communicate(timeout=60)
    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert still_running, "the test needs the first run to outlast the second"
    assert first.returncode == 0, out + err
    assert itsm.state.stats.operations_total == ROWS
    assert all(len(itsm.state.stats.ops_for(sn)) == 1 for sn in sns)
    assert itsm.state.stats.double_suspends == 0
