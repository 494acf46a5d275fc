"""Running the stand-in: the aiohttp app, a background thread for tests, and
:func:`serve` for the command line (``batchops sandbox`` / ``python -m batchops.sandbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from aiohttp import web

from .server import _SHUTDOWN, _Server
from .state import _T, ESB_PREFIX, GATEWAY_PREFIXES, SandboxConfig, SandboxState


def make_app(state: SandboxState) -> web.Application:
    """The aiohttp application serving ``state`` (see the module docstring for routes)."""
    server = _Server(state)
    app = web.Application()
    shutdown = asyncio.Event()
    app[_SHUTDOWN] = shutdown

    async def on_shutdown(_app: web.Application) -> None:
        shutdown.set()  # wakes answers held back by lost_mode="hang"

    app.on_shutdown.append(on_shutdown)
    router = app.router
    for prefix in (ESB_PREFIX, *GATEWAY_PREFIXES):
        router.add_route("*", prefix + "{api}/", server.api)
    router.add_get("/_sandbox/stats", server.get_stats)
    router.add_delete("/_sandbox/stats", server.reset_stats)
    router.add_get("/_sandbox/tickets", server.get_tickets)
    router.add_post("/_sandbox/tickets", server.post_tickets)
    router.add_get("/_sandbox/faults", server.get_faults)
    router.add_post("/_sandbox/faults", server.post_faults)
    router.add_route("*", "/{tail:.*}", server.unknown)
    return app


async def start_sandbox(
    state: SandboxState, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve ``state`` on ``host:port`` (0 picks a free port); the caller cleans up the runner."""
    runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound_port}"


class SandboxThread:
    """Run a sandbox in a background thread with its own event loop.

    ::

        with SandboxThread() as sandbox:
            sandbox.state.generate_tickets("T", 10)
            ...  # talk to sandbox.url
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if state is not None and config is not None:
            raise ValueError("pass either a state or a config, not both")
        self.state = state if state is not None else SandboxState(config)
        self.url = ""
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="batchops-sandbox", daemon=True)

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and join the thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join()

    def go_down(self) -> None:
        """An outage: stop listening (connections are refused) and drop open connections.

        Requests being handled are cut off with their connection; the server's work on
        them goes on or not as the handler is (the state is not rolled back).
        """
        self._on_loop(self._go_down())

    def come_back(self) -> None:
        """End an outage: listen again on the same address and port."""
        self._on_loop(self._come_back())

    async def _go_down(self) -> None:
        runner = self._runner
        assert runner is not None
        for site in list(runner.sites):
            await site.stop()
        server = runner.server
        if server is not None:
            for handler in list(server.connections):
                transport = handler.transport
                if transport is not None:
                    transport.abort()

    async def _come_back(self) -> None:
        runner = self._runner
        assert runner is not None
        host, _, port = self.url.removeprefix("http://").rpartition(":")
        site = web.TCPSite(runner, host.strip("[]"), int(port))
        await site.start()

    def _on_loop(self, work: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the sandbox is not running")
        asyncio.run_coroutine_threadsafe(work, loop).result()

    def call(self, func: Callable[[], _T]) -> _T:
        """Run ``func`` on the server's loop thread (safe state changes mid-run)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the sandbox is not running")

        async def run() -> _T:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to __enter__ when startup fails
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                raise

    async def _main(self) -> None:
        runner, self.url = await start_sandbox(self.state, self._host, self._port)
        self._runner = runner
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


# --------------------------------------------------------------------------- CLI


def serve(
    host: str,
    port: int,
    config: SandboxConfig,
    seed_rows: Iterable[tuple[str, str]] | None = None,
    *,
    generate: Sequence[tuple[str, int]] = (),
    announce: Callable[[str, SandboxState], None],
) -> None:
    """Serve a sandbox until Ctrl-C (or SIGTERM); ``announce(url, state)`` is called once
    it listens, to tell a person where it is and how to authenticate (the CLI says it, in
    the user's language: the stand-in imports nothing of batchops, i18n included).

    ``seed_rows`` are (sn, operator) pairs of an input file (see
    :meth:`SandboxState.seed_from_rows`); ``generate`` holds (prefix, count) pairs.
    """
    state = SandboxState(config)
    if seed_rows is not None:
        state.seed_from_rows(seed_rows)
    for prefix, count in generate:
        state.generate_tickets(prefix, count)

    async def run() -> None:
        runner, url = await start_sandbox(state, host, port)
        try:
            announce(url, state)
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
