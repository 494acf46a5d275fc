"""Shared fixtures: a real stand-in ITSM server on loopback, a clean environment.

Every end-to-end test talks HTTP over 127.0.0.1 to :class:`batchops.sandbox.SandboxThread`;
nothing is mocked on that path.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from batchops import i18n
from batchops.checkpoint.machine import LOCK_DIR_ENV
from batchops.sandbox import Faults, SandboxConfig, SandboxState, SandboxThread, Ticket

from .children import _CHILDREN
from .helpers import APP_CODE, SECRET


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's own credentials, ITSM address, profiles, run locks or
    proxy (loopback traffic must not leave for a proxy the developer's shell names).

    The user's config and state folders (trusted files) and the machine-wide folder of
    run locks and in-flight records (``BATCHOPS_LOCK_DIR``) are fresh folders per test,
    outside the test's own ``tmp_path``; child processes inherit them (through
    ``helpers.host_env``).
    """
    for name in list(os.environ):
        if name.startswith(("BK_", "BATCHOPS_")) or name.lower() in _PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    # English unless a test asks for Chinese: whatever the developer's locale says.
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv(LOCK_DIR_ENV, str(home / "machine"))


@pytest.fixture(autouse=True)
def language_of_the_environment() -> Iterator[None]:
    """A command run in this process chooses its language for the process; the next test
    starts from the environment again."""
    yield
    i18n.use(None)


_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy"}


@pytest.fixture
def sb() -> Iterator[SandboxThread]:
    """A stand-in with its default configuration and no tickets (the stand-in's own tests)."""
    with SandboxThread() as running:
        yield running


@pytest.fixture
def itsm() -> Iterator[SandboxThread]:
    """A stand-in ITSM server whose app secret is :data:`SECRET`."""
    state = SandboxState(SandboxConfig(app_code=APP_CODE, app_secret=SECRET))
    with SandboxThread(state) as server:
        yield server


@pytest.fixture
def stand_in() -> Iterator[Callable[..., SandboxThread]]:
    """Start stand-in servers with given tickets and faults; all are stopped afterwards."""
    with contextlib.ExitStack() as stack:

        def start(tickets: Sequence[Ticket], **faults: Any) -> SandboxThread:
            config = SandboxConfig(app_code=APP_CODE, app_secret=SECRET, faults=Faults(**faults))
            state = SandboxState(config)
            state.seed_tickets(tickets)
            return stack.enter_context(SandboxThread(state))

        yield start


@pytest.fixture
def no_child_left_behind() -> Iterator[None]:
    """A test that fails half-way must not leave its CLI process running (or stopped)."""
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
