"""Proxies and identity, end to end: the real CLI through a forwarding proxy on loopback.

The proxy here is a small one written for the tests (:class:`ForwardingProxy`): it
forwards absolute-form HTTP requests and tunnels CONNECT, only ever to loopback
addresses, and remembers what went through it. For ``https://`` a TLS front (a
self-signed certificate made with ``openssl``) stands before the stand-in, so the
CONNECT path that a real ITSM behind HTTPS_PROXY takes is walked for real.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchops import __version__
from batchops.sandbox import SandboxThread

from ..helpers import creds_env, read_report, run_cli, running, seed, write_csv

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Seen:
    """One request that went through the proxy."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)


class ForwardingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards only to loopback and records each request.

    Plain ``http://`` requests arrive in absolute form (``POST http://host/path``) and
    are forwarded with ``Connection: close``; ``CONNECT host:port`` is tunnelled. With
    ``tls_front_to`` it also serves TLS on :attr:`tls_port` and relays the plain bytes to
    that loopback port (the "HTTPS ITSM" of a test).
    """

    def __init__(self, tls_front_to: int | None = None, certfile: Path | None = None) -> None:
        self.seen: list[Seen] = []
        self.port = 0
        self.tls_port = 0
        self._tls_target = tls_front_to
        self._certfile = certfile
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        servers = [server]
        if self._tls_target is not None and self._certfile is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self._certfile)
            front = await asyncio.start_server(self._tls_front, "127.0.0.1", 0, ssl=context)
            self.tls_port = front.sockets[0].getsockname()[1]
            servers.append(front)
        self._ready.set()
        await self._stop.wait()
        for each in servers:
            each.close()
            await each.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        line = await reader.readline()
        if not line.strip():
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()).strip():
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip()] = value.strip()
        self.seen.append(Seen(method, target, headers))
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            assert host.strip("[]") in LOOPBACK, f"the test proxy only reaches loopback: {host}"
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, up_reader, up_writer)
            return False
        url = urllib.parse.urlsplit(target)
        assert url.hostname in LOOPBACK, f"the test proxy only reaches loopback: {url.hostname}"
        length = int(headers.get("Content-Length", "0"))
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        forwarded = {
            k: v
            for k, v in headers.items()
            if not k.lower().startswith("proxy-") and k.lower() != "connection"
        }
        forwarded["Connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in forwarded.items()
        )
        up_writer.write(head.encode("latin-1") + b"\r\n" + body)
        await up_writer.drain()
        answer = await up_reader.read()
        up_writer.close()
        writer.write(answer)
        await writer.drain()
        return False  # the answer says "Connection: close"

    async def _tls_front(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._tls_target is not None
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._tls_target)
        try:
            await _pipe_both(reader, writer, up_reader, up_writer)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            dst.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _dead_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[ForwardingProxy]:
    with ForwardingProxy() as running_proxy:
        yield running_proxy


def _sheet(itsm: SandboxThread, tmp_path: Path, prefix: str, n: int = 3) -> Path:
    sns = [f"{prefix}{i}" for i in range(n)]
    seed(itsm, *(running(sn) for sn in sns))
    return write_csv(tmp_path / f"{prefix}.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])


def _requests(itsm: SandboxThread) -> int:
    return sum(itsm.state.stats.requests.values())


def test_http_proxy_from_the_environment_carries_every_request(
    itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path
) -> None:
    """HTTP_PROXY set: every request (pre-check and operations) goes through the proxy, in
    absolute form to the ITSM address, and names batchops in its User-Agent."""
    src = _sheet(itsm, tmp_path, "PX")
    out = run_cli(
        ["run", str(src), "--no-checkpoint"],
        creds_env(itsm.url, HTTP_PROXY=proxy.url, NO_PROXY=""),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert [r["status"] for r in read_report(tmp_path / "PX.report.csv")] == ["success"] * 3
    # A reachability probe, one get_tickets, three operations.
    assert len(proxy.seen) == _requests(itsm) == 5
    assert proxy.seen[0].target in (itsm.url, itsm.url + "/")  # the probe
    assert all(s.target.startswith(itsm.url + "/api/c/compapi/v2/itsm/") for s in proxy.seen[1:])
    assert {s.headers.get("User-Agent") for s in proxy.seen} == {f"batchops/{__version__}"}


def test_no_proxy_is_respected(itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path) -> None:
    """NO_PROXY naming the ITSM host: the proxy in HTTP_PROXY sees nothing, the run works."""
    src = _sheet(itsm, tmp_path, "NP")
    out = run_cli(
        ["run", str(src), "--no-checkpoint"],
        creds_env(itsm.url, HTTP_PROXY=proxy.url, NO_PROXY="localhost,127.0.0.1"),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert proxy.seen == []
    assert _requests(itsm) == 5


def test_proxy_flag_and_profile_win_over_the_environment(
    itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path
) -> None:
    """--proxy (and a profile's proxy) is used although HTTP_PROXY names a dead proxy and
    NO_PROXY names the host; --proxy none connects directly past a dead HTTP_PROXY."""
    dead = f"http://127.0.0.1:{_dead_port()}"
    env = creds_env(itsm.url, HTTP_PROXY=dead, NO_PROXY="127.0.0.1")

    src = _sheet(itsm, tmp_path, "PF")
    out = run_cli(["run", str(src), "--no-checkpoint", "--proxy", proxy.url], env)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(proxy.seen) == 5

    profile = tmp_path / "batchops.toml"
    profile.write_text(f'[profiles.lab]\nproxy = "{proxy.url}"\n', encoding="utf-8")
    src = _sheet(itsm, tmp_path, "PP")
    out = run_cli(
        ["run", str(src), "--no-checkpoint", "--config", str(profile), "--profile", "lab"], env
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(proxy.seen) == 10

    src = _sheet(itsm, tmp_path, "PN")
    out = run_cli(
        ["run", str(src), "--no-checkpoint", "--proxy", "none"],
        creds_env(itsm.url, HTTP_PROXY=dead, NO_PROXY=""),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(proxy.seen) == 10


def test_proxy_that_is_not_a_url_is_a_usage_error(tmp_path: Path) -> None:
    """--proxy without a scheme: exit 2, one Error line, the password in it never shown."""
    src = write_csv(tmp_path / "t.csv", [["N1", "admin", "SUSPEND", "x"]])
    out = run_cli(
        ["run", str(src), "--proxy", "user:hunter2secret@proxy:3128"],
        creds_env("http://127.0.0.1:9"),
    )
    assert out.exit_code == 2
    assert out.stderr.startswith("Error: --proxy must be")
    assert "hunter2secret" not in out.stderr


def test_sandbox_run_never_goes_through_a_proxy(tmp_path: Path) -> None:
    """--sandbox with a dead HTTP_PROXY in the environment still works: the embedded
    stand-in is on this machine."""
    src = write_csv(tmp_path / "t.csv", [["S1", "admin", "SUSPEND", "x"]])
    dead = f"http://127.0.0.1:{_dead_port()}"
    out = run_cli(["run", str(src), "--sandbox"], {"HTTP_PROXY": dead, "NO_PROXY": ""})
    assert out.exit_code == 0, out.stdout + out.stderr


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate (and key, same file) for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    pem = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(pem),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    both = tmp_path / "both.pem"
    both.write_bytes(pem.read_bytes() + key.read_bytes())
    return both


def test_https_proxy_tunnels_https_itsm_with_connect(
    itsm: SandboxThread, certificate: Path, tmp_path: Path
) -> None:
    """HTTPS_PROXY set and ITSM on https://: batchops asks the proxy to CONNECT to the ITSM
    host, speaks TLS through the tunnel (verified with --ca-bundle) and the run works."""
    port = int(urllib.parse.urlsplit(itsm.url).port or 0)
    with ForwardingProxy(tls_front_to=port, certfile=certificate) as front:
        https_url = f"https://127.0.0.1:{front.tls_port}"
        src = _sheet(itsm, tmp_path, "TL")
        out = run_cli(
            ["run", str(src), "--no-checkpoint", "--ca-bundle", str(certificate)],
            creds_env(https_url, HTTPS_PROXY=front.url, NO_PROXY=""),
        )
        seen = list(front.seen)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert seen and {s.method for s in seen} == {"CONNECT"}
    assert {s.target for s in seen} == {f"127.0.0.1:{front.tls_port}"}
    assert _requests(itsm) == 5


def test_config_show_masks_proxy_password_and_notify_keys(tmp_path: Path) -> None:
    """`config show` names the proxy and notification settings with their source, but shows
    no proxy password and no notification URL beyond its scheme; a bad notify_on is
    refused with the file and key named."""
    profile = tmp_path / "batchops.toml"
    profile.write_text(
        "[profiles.lab]\n"
        'proxy = "http://ops:pr0xyPASS@proxy.example.com:3128"\n'
        'notify = ["wecombot://BOTKEY123456", "mailto://u:MAILpass1@example.com"]\n'
        'notify_on = "always"\n',
        encoding="utf-8",
    )
    out = run_cli(["config", "show", "--config", str(profile), "--profile", "lab"])
    assert out.exit_code == 0, out.stderr
    assert "http://ops:***@proxy.example.com:3128" in out.stdout
    assert "wecombot://…, mailto://…" in out.stdout
    assert "always" in out.stdout
    for secret in ("pr0xyPASS", "BOTKEY123456", "MAILpass1"):
        assert secret not in out.stdout + out.stderr

    profile.write_text('[profiles.lab]\nnotify_on = "sometimes"\n', encoding="utf-8")
    out = run_cli(["config", "show", "--config", str(profile), "--profile", "lab"])
    assert out.exit_code == 2
    assert "notify_on must be 'problems' or 'always'" in out.stderr


def test_proxy_credentials_in_the_url_are_sent_to_the_proxy_and_never_shown(
    itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path
) -> None:
    """--proxy http://user:pass@host: the proxy gets Basic credentials; -vv masks them."""
    src = _sheet(itsm, tmp_path, "PA")
    proxy_url = proxy.url.replace("http://", "http://ops:pr0xy%20PASS@")
    out = run_cli(
        ["run", str(src), "--no-checkpoint", "--proxy", proxy_url, "-vv"], creds_env(itsm.url)
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    expected = "Basic " + base64.b64encode(b"ops:pr0xy PASS").decode()
    assert {s.headers.get("Proxy-Authorization") for s in proxy.seen} == {expected}
    assert "pr0xy" not in out.stdout + out.stderr
    assert expected.split()[1] not in out.stdout + out.stderr


def test_select_goes_through_the_proxy_of_a_trusted_profile(
    itsm: SandboxThread,
    proxy: ForwardingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """select takes its client from the same place as run: the proxy of the working
    folder's trusted batchops.toml carries every get_tickets, although HTTP_PROXY names a
    dead proxy and NO_PROXY names the host."""
    seed(itsm, *(running(f"SP{i}") for i in range(3)))
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "batchops.toml"
    profile.write_text(
        f'default_profile = "lab"\n[profiles.lab]\nbase_url = "{itsm.url}"\n'
        f'proxy = "{proxy.url}"\n',
        encoding="utf-8",
    )
    assert run_cli(["config", "trust", str(profile)]).exit_code == 0
    env = creds_env(itsm.url, HTTP_PROXY=f"http://127.0.0.1:{_dead_port()}", NO_PROXY="127.0.0.1")
    del env["BATCHOPS_BASE_URL"]  # the address comes from the profile too
    out = run_cli(["select", "--creator", "admin", "-o", "s.csv"], env)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert {r["sn"] for r in read_report(tmp_path / "s.csv")} == {"SP0", "SP1", "SP2"}
    assert proxy.seen and len(proxy.seen) == _requests(itsm)
    assert all(s.target.startswith(itsm.url + "/api/c/compapi/v2/itsm/") for s in proxy.seen)
    assert {s.headers.get("User-Agent") for s in proxy.seen} == {f"batchops/{__version__}"}


@pytest.mark.parametrize("entry", ["127.0.0.0/8", "127.0.0.1:{port}", "*"])
def test_no_proxy_with_a_cidr_or_a_port_is_respected(
    itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path, entry: str
) -> None:
    """NO_PROXY naming the ITSM address by a CIDR block or as host:port (both of which
    requests honours) keeps every request, and the secret, away from HTTP_PROXY."""
    port = urllib.parse.urlsplit(itsm.url).port
    src = _sheet(itsm, tmp_path, "NC")
    out = run_cli(
        ["run", str(src), "--no-checkpoint"],
        creds_env(
            itsm.url, HTTP_PROXY=proxy.url, NO_PROXY=f"example.org, {entry.format(port=port)}"
        ),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert proxy.seen == []
    assert _requests(itsm) == 5


def _stored_bytes(folder: Path) -> bytes:
    """Every file under ``folder``, a workbook's XML parts unpacked."""
    import zipfile

    found = b""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as book:
                data += b"".join(book.read(name) for name in book.namelist())
        found += data
    return found


def test_no_password_of_a_url_is_stored_or_logged(
    itsm: SandboxThread, proxy: ForwardingProxy, tmp_path: Path
) -> None:
    """--base-url and --proxy with user:password@: the run works, and neither password is
    in the checkpoint, the XLSX report (its Summary sheet's settings), the summary JSON or
    the JSON log, nor in plan's summary JSON. The checkpoint still resumes under the same
    command, and so does one an older batchops wrote with the password in it, which
    ``status`` then shows masked."""
    base = itsm.url.replace("http://", "http://ops:B4sePw9x@")
    proxied = proxy.url.replace("http://", "http://ops:Pr0xyPw9x@")
    src = _sheet(itsm, tmp_path, "PW")
    args = ["run", str(src), "-o", str(tmp_path / "PW.report.xlsx"), "--base-url", base]
    args += ["--proxy", proxied, "--summary-json", str(tmp_path / "s.json"), "--log-json"]
    out = run_cli(args, creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(proxy.seen) == 5
    again = run_cli(args, creds_env(itsm.url))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "nothing left to send" in again.stdout + again.stderr
    planned = run_cli(
        ["plan", str(src), "--base-url", base, "--summary-json", str(tmp_path / "p.json")],
        creds_env(itsm.url),
    )
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    assert "ops:***@127.0.0.1" in (tmp_path / "p.json").read_text(encoding="utf-8")
    logged = "".join(run.stdout + run.stderr for run in (out, again, planned))
    (tmp_path / "out.txt").write_text(logged, encoding="utf-8")
    stored = _stored_bytes(tmp_path)
    assert b"ops:***@127.0.0.1" in stored  # the Summary sheet names the target, masked
    for password in (b"B4sePw9x", b"Pr0xyPw9x"):
        assert password not in stored

    older = sqlite3.connect(tmp_path / ".batchops" / "PW.checkpoint.db")
    with older:
        older.execute("UPDATE meta SET value = ? WHERE key = 'base_url'", (base,))
    older.close()
    again = run_cli(args, creds_env(itsm.url))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "nothing left to send" in again.stdout + again.stderr
    shown = run_cli(["status", str(tmp_path / ".batchops" / "PW.checkpoint.db")])
    assert shown.exit_code == 0 and "ops:***@127.0.0.1" in shown.stdout, shown.stdout
    assert "B4sePw9x" not in shown.stdout + shown.stderr + again.stdout + again.stderr
