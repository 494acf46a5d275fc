"""Run settings: flags, environment and ``batchops.toml`` profiles merged into one place.

Precedence, for every setting: flag (or Python keyword) > environment > profile >
default. :func:`resolve` does the merge once and remembers where each value came from,
so ``batchops config show`` can say it. Environment variables are named here and read
nowhere else. The app secret and the user token are held in :class:`Credentials`,
whose ``repr`` masks them; a profile never holds a secret, only the *name* of the
environment variable that does (``secret_env``).

A profile file looks like::

    default_profile = "prod"

    [profiles.prod]
    base_url = "https://paas.example.com"
    gateway = "esb"
    app_code = "ops-bulk"
    username = "admin"
    secret_env = "PROD_BK_APP_SECRET"
    concurrency = 50
    rate = 100
    timeout = 20
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

Gateway = Literal["esb", "apigw"]

ENV_BASE_URL = "BATCHOPS_BASE_URL"
ENV_APP_CODE = "BK_APP_CODE"
ENV_APP_SECRET = "BK_APP_SECRET"
ENV_USERNAME = "BK_USERNAME"
ENV_TOKEN = "BK_TOKEN"
ENV_PROFILE = "BATCHOPS_PROFILE"
ENV_CONFIG = "BATCHOPS_CONFIG"
CONFIG_NAME = "batchops.toml"

#: How long the gateway gives ITSM to answer (the ESB's backend timeout): after this, a
#: request that left can no longer land, so only then does "unchanged" prove anything.
DEFAULT_SERVER_TIMEOUT_S = 30.0
#: Official BlueKing clients wait 20 s, but the ESB gives the backend 30 s: waiting a little
#: longer than the gateway lets its own timeout answer (1306201 / 1650401) arrive first,
#: which says more than silence does.
DEFAULT_TIMEOUT_S = DEFAULT_SERVER_TIMEOUT_S + 5.0
#: How long a run waits for an unreachable ITSM to come back before it stops, resumable.
DEFAULT_OUTAGE_WAIT_S = 60.0
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
    *,
    secret_env: str = ENV_APP_SECRET,
    token_env: str = ENV_TOKEN,
) -> Credentials:
    """Build credentials from the settings and the environment; raise a ConfigError if short.

    The app secret and the token are read only from the environment: a flag would put
    them in the shell history and in ``ps`` output.
    """
    env = os.environ if env is None else env
    code = (app_code or env.get(ENV_APP_CODE, "")).strip()
    secret = env.get(secret_env, "").strip()
    user = (username or env.get(ENV_USERNAME, "")).strip()
    token = env.get(token_env, "").strip()
    missing = []
    if not code:
        missing.append(f"the app code (--app-code or {ENV_APP_CODE})")
    if not secret:
        missing.append(f"the app secret (environment variable {secret_env})")
    if not user and not token:
        missing.append(f"a user (--username or {ENV_USERNAME}, or {token_env})")
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


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a profile may hold: its type, default and environment variable."""

    kind: type
    default: Any = None
    env: str | None = None


#: Everything a profile may set. Secrets are deliberately absent.
SETTINGS: dict[str, Setting] = {
    "base_url": Setting(str, None, ENV_BASE_URL),
    "gateway": Setting(str, "esb"),
    "app_code": Setting(str, None, ENV_APP_CODE),
    "username": Setting(str, None, ENV_USERNAME),
    "secret_env": Setting(str, ENV_APP_SECRET),
    "token_env": Setting(str, ENV_TOKEN),
    "concurrency": Setting(int, DEFAULT_CONCURRENCY),
    "rate": Setting(float, None),
    "timeout": Setting(float, DEFAULT_TIMEOUT_S),
    "retries": Setting(int, 8),
    "max_failures": Setting(str, None),
    "readback_delay": Setting(float, 1.0),
    "server_timeout": Setting(float, DEFAULT_SERVER_TIMEOUT_S),
    "outage_wait": Setting(float, DEFAULT_OUTAGE_WAIT_S),
    "ca_bundle": Setting(str, None),
}

_SECRET_KEYS = frozenset({"secret", "app_secret", "bk_app_secret", "token", "bk_token", "password"})


@dataclass(frozen=True, slots=True)
class Resolved:
    """Merged settings and, for each, where it came from."""

    values: dict[str, Any]
    sources: dict[str, str]
    profile: str | None = None
    config_path: Path | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def find_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """The profile file: ``--config``, ``$BATCHOPS_CONFIG``, ./batchops.toml, or the user's."""
    given = explicit or env.get(ENV_CONFIG)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; check --config")
        return path
    candidates = [Path.cwd() / CONFIG_NAME]
    xdg = env.get("XDG_CONFIG_HOME")
    home = Path(xdg) if xdg else Path(env.get("HOME", str(Path.home()))) / ".config"
    candidates.append(home / "batchops" / CONFIG_NAME)
    return next((p for p in candidates if p.is_file()), None)


def load_profile(path: Path | None, name: str | None) -> tuple[str | None, dict[str, Any]]:
    """Read one profile from the file (the file's ``default_profile`` when none is named)."""
    if path is None:
        if name:
            raise ConfigError(
                f"--profile {name}: no {CONFIG_NAME} found in this folder or "
                "~/.config/batchops/; create one or pass --config PATH"
            )
        return None, {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] sections")
    name = name or document.get("default_profile")
    if not name:
        return None, {}
    if name not in profiles or not isinstance(profiles[name], dict):
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{path} has no profile '{name}'; profiles there: {known}")
    return str(name), _checked_profile(path, str(name), profiles[name])


def _checked_profile(path: Path, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if key.lower() in _SECRET_KEYS:
            raise ConfigError(
                f"{path}: profile '{name}' holds '{key}'; never put a secret in the file — "
                f'export it and name the variable instead: secret_env = "MY_APP_SECRET"'
            )
        setting = SETTINGS.get(key)
        if setting is None:
            raise ConfigError(
                f"{path}: profile '{name}' has unknown key '{key}'; known keys: "
                + ", ".join(SETTINGS)
            )
        if setting.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if setting.kind is str and isinstance(value, int) and key == "max_failures":
            value = str(value)
        if not isinstance(value, setting.kind) or isinstance(value, bool):
            raise ConfigError(
                f"{path}: profile '{name}' key '{key}' must be a {setting.kind.__name__}, "
                f"not {value!r}"
            )
        clean[key] = value
    if clean.get("gateway", "esb") not in ("esb", "apigw"):
        raise ConfigError(f"{path}: profile '{name}' gateway must be 'esb' or 'apigw'")
    return clean


def resolve(
    explicit: Mapping[str, Any],
    *,
    profile: str | None = None,
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Merge settings: ``explicit`` (flags, non-None) > environment > profile > default."""
    env = os.environ if env is None else env
    path = find_config(config, env)
    name, chosen = load_profile(path, profile or env.get(ENV_PROFILE) or None)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, setting in SETTINGS.items():
        if explicit.get(key) is not None:
            values[key], sources[key] = explicit[key], "flag"
        elif setting.env and env.get(setting.env, "").strip():
            values[key], sources[key] = env[setting.env].strip(), f"env {setting.env}"
        elif key in chosen:
            values[key], sources[key] = chosen[key], f"profile {name} ({path})"
        else:
            values[key], sources[key] = setting.default, "default"
    return Resolved(values, sources, name, path)


def describe(resolved: Resolved, env: Mapping[str, str] | None = None) -> str:
    """``batchops config show``: every setting, its value and its source; secrets masked."""
    env = os.environ if env is None else env
    lines = []
    if resolved.config_path:
        lines.append(f"config file: {resolved.config_path}")
    else:
        lines.append("config file: none found")
    lines.append(f"profile: {resolved.profile or '(none)'}")
    width = max(len(k) for k in SETTINGS) + 1
    for key in SETTINGS:
        value = resolved.values[key]
        shown = "(not set)" if value is None else str(value)
        lines.append(f"  {key:<{width}} {shown:<40} [{resolved.sources[key]}]")
    secret_env = resolved.values["secret_env"]
    token_env = resolved.values["token_env"]
    lines.append(f"  {'app secret':<{width}} {mask(env.get(secret_env)):<40} [env {secret_env}]")
    lines.append(f"  {'token':<{width}} {mask(env.get(token_env)):<40} [env {token_env}]")
    return "\n".join(lines)
