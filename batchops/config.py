"""Run settings: what the user chose, gathered from flags and environment into frozen objects.

Environment variables are named here and read nowhere else. The app secret and the
user token are held in :class:`Credentials`, whose ``repr`` masks them, so a settings
object can be logged or shown in an error without leaking anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigError

Gateway = Literal["esb", "apigw"]

ENV_BASE_URL = "BATCHOPS_BASE_URL"
ENV_APP_CODE = "BK_APP_CODE"
ENV_APP_SECRET = "BK_APP_SECRET"
ENV_USERNAME = "BK_USERNAME"
ENV_TOKEN = "BK_TOKEN"

#: Official BlueKing clients wait 20 s; the ESB itself gives the backend 30 s.
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_CONCURRENCY = 20


def mask(secret: str | None) -> str:
    """How a secret is shown anywhere: never its value, only whether it is set."""
    return "(set)" if secret else "(not set)"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who batchops is to the gateway. Secret fields never appear in ``repr``."""

    app_code: str
    app_secret: str = field(repr=False)
    username: str = ""
    token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return (
            f"Credentials(app_code={self.app_code!r}, app_secret={mask(self.app_secret)}, "
            f"username={self.username!r}, token={mask(self.token)})"
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be written anywhere (for scrubbing)."""
        return tuple(s for s in (self.app_secret, self.token) if s)

    def auth_fields(self) -> dict[str, str]:
        """The credential keys, as the ESB body and the X-Bkapi-Authorization header take them."""
        fields = {"bk_app_code": self.app_code, "bk_app_secret": self.app_secret}
        if self.token:
            fields["bk_token"] = self.token
        if self.username:
            fields["bk_username"] = self.username
        return fields


def credentials_from(
    app_code: str | None,
    username: str | None,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """Build credentials from the flags given and the environment; raise a ConfigError if short.

    The app secret and the token are read only from the environment: a flag would put
    them in the shell history and in ``ps`` output.
    """
    env = os.environ if env is None else env
    code = (app_code or env.get(ENV_APP_CODE, "")).strip()
    secret = env.get(ENV_APP_SECRET, "").strip()
    user = (username or env.get(ENV_USERNAME, "")).strip()
    token = env.get(ENV_TOKEN, "").strip()
    missing = []
    if not code:
        missing.append(f"the app code (--app-code or {ENV_APP_CODE})")
    if not secret:
        missing.append(f"the app secret (environment variable {ENV_APP_SECRET})")
    if not user and not token:
        missing.append(f"a user (--username or {ENV_USERNAME}, or {ENV_TOKEN})")
    if missing:
        raise ConfigError("missing " + "; ".join(missing) + ". Set them and run again.")
    return Credentials(app_code=code, app_secret=secret, username=user, token=token)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything the HTTP client needs to reach one ITSM deployment."""

    base_url: str
    gateway: Gateway
    credentials: Credentials
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = 10.0
    ca_bundle: str | None = None
    insecure: bool = False
