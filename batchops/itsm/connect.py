"""The one way from a command's settings to a client of ITSM.

Every command that talks to ITSM (``run``, ``plan``, ``select``) gets its client from
:func:`client_for`, so the client's settings are built in one place from the typed
:class:`~batchops.settings.records.Connection`: the gateway, ``--timeout``,
``--ca-bundle``, ``--insecure``, the proxy (``--proxy`` or a profile's; else
HTTPS_PROXY / HTTP_PROXY / NO_PROXY) and ``--verbose``'s tracer, which learns the
secrets it must mask. The embedded stand-in runs on this machine: it is reached directly,
never through a proxy from the flags, a profile or the environment.

What every session has whatever its settings (the User-Agent, redirects never followed,
answers scrubbed of the secrets) is :class:`~batchops.itsm.client.ItsmClient`'s; how
fast a command sends (``--rate``) is the sender's, not the client's.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchops.settings import DEFAULT_CONCURRENCY, ClientSettings, Connection, Credentials

from .client import ItsmClient
from .trace import Tracer


@dataclass(frozen=True, slots=True)
class Target:
    """The ITSM a command talks to: the configured one, or the stand-in started for it."""

    base_url: str
    credentials: Credentials
    #: The embedded stand-in, on this machine: reached directly, never through a proxy.
    stand_in: bool = False


def configured_target(connection: Connection) -> Target:
    """The ITSM the settings name (not the stand-in, which is started, not configured)."""
    if connection.credentials is None:
        raise ValueError("no credentials in the settings: start the stand-in and pass its Target")
    return Target(connection.base_url, connection.credentials)


def client_settings(connection: Connection, target: Target, *, concurrency: int) -> ClientSettings:
    """What the HTTP client needs to reach ``target`` as ``connection`` says."""
    return ClientSettings(
        base_url=target.base_url,
        gateway=connection.gateway,
        credentials=target.credentials,
        concurrency=concurrency,
        timeout_s=connection.timeout_s,
        ca_bundle=connection.ca_bundle,
        insecure=connection.insecure,
        proxy=None if target.stand_in else connection.proxy,
        trust_env=not target.stand_in,
    )


def client_for(
    connection: Connection,
    target: Target | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    tracer: Tracer | None = None,
) -> ItsmClient:
    """The client of ``target`` (default: the configured ITSM); use as ``async with``,
    which opens its session. ``concurrency`` sizes its connection pool."""
    target = target or configured_target(connection)
    if tracer is not None:
        tracer.add_secrets(target.credentials.secrets)
    return ItsmClient(client_settings(connection, target, concurrency=concurrency), tracer=tracer)
