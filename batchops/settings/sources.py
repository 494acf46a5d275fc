"""Run settings: flags, environment and ``batchops.toml`` profiles merged into one place.

Precedence, for every setting: flag (or Python keyword) > environment > profile >
default; for the ITSM address BlueKing's own variables come last
(``BK_COMPONENT_API_URL``, or ``BK_API_URL_TMPL`` with ``--gateway apigw``), so
batchops inside a BlueKing app finds ITSM as the app's own clients do. :func:`resolve`
does the merge once and remembers where each value came from, so ``batchops config
show`` can say it. Environment variables are named here and read nowhere else
(BlueKing's own in :mod:`.blueking`). Every numeric setting is checked against one table of ranges
(:data:`RANGES`), whichever source it came from: a profile's ``concurrency = 5000`` is
refused exactly like ``--concurrency 5000``, and ``inf`` or ``nan`` never get through.
Every number has a lower and an upper bound: a wait of ``1e308`` seconds or a rate of
``1e-300`` per second is a run that never ends, not a choice. The two URL settings
(``base_url``, ``proxy``) are checked the same way, whatever their source.

A ``batchops.toml`` in the working directory is read only once the user has trusted it
(:mod:`.trust`): a folder handed over by someone else could otherwise point ``base_url``
at their host and ``secret_env`` at any variable. An untrusted or changed file is ignored
with a warning naming it.

The app secret and the user token are held in :class:`Credentials`, whose ``repr`` masks
them; a profile never holds a secret, only the *name* of the
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
    timeout = 35
    default_message = "批量操作：{action}"
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from batchops.errors import ConfigError
from batchops.i18n import _, padded, parse_language
from batchops.secrets import masked_url, notify_label, presence

from .blueking import blueking_base_url
from .origins import shown_source
from .ranges import RANGES
from .templates import TEMPLATE_FIELDS, checked_template
from .trust import is_trusted, read_store, unreadable_config, user_config_dir
from .urls import checked_url

Gateway = Literal["esb", "apigw"]
GATEWAYS: tuple[Gateway, ...] = ("esb", "apigw")

#: A setting's value as a source gives it: text, a number, a list of URLs, or unset.
SettingValue = str | int | float | list[str] | None

ENV_BASE_URL = "BATCHOPS_BASE_URL"
ENV_APP_CODE = "BK_APP_CODE"
ENV_APP_SECRET = "BK_APP_SECRET"
ENV_USERNAME = "BK_USERNAME"
ENV_TOKEN = "BK_TOKEN"
ENV_PROFILE = "BATCHOPS_PROFILE"
ENV_CONFIG = "BATCHOPS_CONFIG"
CONFIG_NAME = "batchops.toml"

#: How long a request whose answer was lost may still land: only after this does
#: "unchanged" prove anything. The gateway gives up after 30 s, but ITSM's web worker runs
#: on until its own hard timeout (60–300 s, set by the deployment), so 5 minutes.
DEFAULT_SERVER_TIMEOUT_S = 300.0
#: The ESB gives the backend 30 s.
ESB_BACKEND_TIMEOUT_S = 30.0
#: Official BlueKing clients wait 20 s, but the ESB gives the backend 30 s: waiting a little
#: longer than the gateway lets its own timeout answer (1306201 / 1650401) arrive first,
#: which says more than silence does.
DEFAULT_TIMEOUT_S = ESB_BACKEND_TIMEOUT_S + 5.0
#: How long a run waits for an unreachable ITSM to come back before it stops, resumable.
DEFAULT_OUTAGE_WAIT_S = 60.0
DEFAULT_CONCURRENCY = 20
#: Resends of a row whose request was certainly not applied, or read back unchanged.
DEFAULT_RETRIES = 8
#: Seconds to let a request still running on the server finish before reading back.
DEFAULT_READBACK_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who batchops is to the gateway. Secret fields never appear in ``repr``."""

    app_code: str
    app_secret: str = field(repr=False)
    username: str = ""
    token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return (
            f"Credentials(app_code={self.app_code!r}, app_secret={presence(self.app_secret)}, "
            f"username={self.username!r}, token={presence(self.token)})"
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
        missing.append(_("the app code (--app-code or {env})").format(env=ENV_APP_CODE))
    if not secret:
        missing.append(_("the app secret (environment variable {env})").format(env=secret_env))
    if not user and not token:
        missing.append(
            _("a user (--username or {env}, or {token_env})").format(
                env=ENV_USERNAME, token_env=token_env
            )
        )
    if missing:
        raise ConfigError(
            _("missing {what}. Set them and run again.").format(what=_("; ").join(missing))
        )
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
    #: An explicit proxy URL (wins over the environment); "none" connects directly.
    proxy: str | None = None
    #: Honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (off for the embedded stand-in).
    trust_env: bool = True


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a profile may hold: its type, default and environment variable."""

    kind: type
    default: SettingValue = None
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
    "retries": Setting(int, DEFAULT_RETRIES),
    "max_failures": Setting(str, None),
    # What a blank action_message of an UNSUSPEND/WITHDRAW row becomes ({action}: the
    # action in the user's language); None: "batchops: {action}" in the user's language.
    "default_message": Setting(str, None),
    "readback_delay": Setting(float, DEFAULT_READBACK_DELAY_S),
    "server_timeout": Setting(float, DEFAULT_SERVER_TIMEOUT_S),
    "outage_wait": Setting(float, DEFAULT_OUTAGE_WAIT_S),
    "ca_bundle": Setting(str, None),
    # A proxy URL for every request, over HTTPS_PROXY/HTTP_PROXY/NO_PROXY; "none": direct.
    "proxy": Setting(str, None),
    # Apprise URLs told when a run ends, and when: "problems" (exit code not 0) or "always".
    "notify": Setting(list, None),
    "notify_on": Setting(str, "problems"),
    # The language batchops speaks, after --lang and BATCHOPS_LANG: "zh" or "en".
    "lang": Setting(str, None),
    # What undo writes into tickets ({row}, {file}); unset: batchops' words, in the language.
    "undo_message": Setting(str, None),
}


#: The settings that are URLs: checked by :func:`checked_url` whatever their source.
URL_SETTINGS = frozenset({"base_url", "proxy"})


def check_setting(key: str, value: SettingValue, source: str) -> SettingValue:
    """``value`` if it is fit for ``key``; otherwise a ConfigError naming the source.

    Numbers are compared as numbers, so ``inf``, ``nan`` and text that is not a number
    are refused here, at the start of a run, and never reach the sender. A setting's
    source is ``flag`` (or a Python keyword), ``env NAME`` or ``profile …``.
    """
    flag = "--" + key.replace("_", "-")
    where = (
        flag
        if source == "flag"
        else _("{key} ({source})").format(key=key, source=shown_source(source))
    )
    if key in URL_SETTINGS and isinstance(value, str):
        checked_url(value, where, none_allowed=key == "proxy")
        return value
    if key == "lang" and isinstance(value, str) and parse_language(value) is None:
        raise ConfigError(
            _("{where} must be 'zh' or 'en', not {value}; fix it and run again").format(
                where=where, value=repr(value)
            )
        )
    if key in TEMPLATE_FIELDS and isinstance(value, str):
        return checked_template(value, TEMPLATE_FIELDS[key], where)
    bounds = RANGES.get(key)
    if bounds is None or value is None or key == "max_failures":
        return value
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except (ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not bounds.admits(number):
        raise ConfigError(
            _("{where} must be {rule}, not {value}; fix it and run again").format(
                where=where, rule=bounds.rule(), value=repr(value)
            )
        )
    if bounds.whole and not number.is_integer():
        raise ConfigError(
            _("{where} must be a whole number, not {value}; fix it and run again").format(
                where=where, value=repr(value)
            )
        )
    return value


NOTIFY_ON = ("problems", "always")


_SECRET_KEYS = frozenset({"secret", "app_secret", "bk_app_secret", "token", "bk_token", "password"})


@dataclass(frozen=True, slots=True)
class Values:
    """The merged settings, typed: one field per entry of :data:`SETTINGS` (whose
    defaults they fall back to), each checked and converted once by :func:`resolve`."""

    base_url: str | None
    gateway: Gateway
    app_code: str | None
    username: str | None
    secret_env: str
    token_env: str
    concurrency: int
    rate: float | None
    timeout: float
    retries: int
    max_failures: str | None
    default_message: str | None
    readback_delay: float
    server_timeout: float
    outage_wait: float
    ca_bundle: str | None
    proxy: str | None
    notify: tuple[str, ...] | None
    notify_on: str
    lang: str | None
    undo_message: str | None

    def shown(self, key: str) -> str:
        """One setting as ``config show`` prints it (a proxy's password and a
        notification URL's key masked)."""
        value = getattr(self, key)
        if value is None:
            return _("(not set)")
        if key in ("notify", "proxy"):
            return _shown(key, list(value) if isinstance(value, tuple) else value)
        return str(value)


def _text(value: SettingValue) -> str | None:
    return None if value is None else str(value)


def _number(key: str, value: SettingValue) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"setting {key} has no number: {value!r}")  # SETTINGS gives it a default


def _gateway(value: SettingValue) -> Gateway:
    for gateway in GATEWAYS:
        if value == gateway:
            return gateway
    raise ConfigError(
        _("--gateway must be 'esb' or 'apigw', not {value}").format(value=repr(value))
    )


def _typed(values: Mapping[str, SettingValue]) -> Values:
    """The merged values (each already in range) as one typed record."""
    rate, notify = values["rate"], values["notify"]
    return Values(
        base_url=_text(values["base_url"]),
        gateway=_gateway(values["gateway"]),
        app_code=_text(values["app_code"]),
        username=_text(values["username"]),
        secret_env=str(values["secret_env"]),
        token_env=str(values["token_env"]),
        concurrency=int(_number("concurrency", values["concurrency"])),
        rate=None if rate is None else _number("rate", rate),
        timeout=_number("timeout", values["timeout"]),
        retries=int(_number("retries", values["retries"])),
        max_failures=_text(values["max_failures"]),
        default_message=_text(values["default_message"]),
        readback_delay=_number("readback_delay", values["readback_delay"]),
        server_timeout=_number("server_timeout", values["server_timeout"]),
        outage_wait=_number("outage_wait", values["outage_wait"]),
        ca_bundle=_text(values["ca_bundle"]),
        proxy=_text(values["proxy"]),
        notify=tuple(str(url) for url in notify) if isinstance(notify, list) else None,
        notify_on=str(values["notify_on"]),
        lang=_text(values["lang"]),
        undo_message=_text(values["undo_message"]),
    )


@dataclass(frozen=True, slots=True)
class Resolved:
    """Merged settings (typed) and, for each, where it came from."""

    values: Values
    sources: dict[str, str]
    profile: str | None = None
    config_path: Path | None = None
    #: Things the user should hear about (an ignored, untrusted batchops.toml).
    warnings: tuple[str, ...] = ()


def find_config(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[Path | None, list[str]]:
    """The profile file and any warnings: ``--config``, ``$BATCHOPS_CONFIG``,
    ./batchops.toml when trusted, or the user's own."""
    given = explicit or env.get(ENV_CONFIG)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(
                _("config file {path} does not exist; check --config").format(path=path)
            )
        return path, []
    warnings: list[str] = []
    local = Path.cwd() / CONFIG_NAME
    if local.is_file():
        store = read_store(env)
        if is_trusted(local, env, store):
            return local, warnings
        if store.problem:
            warnings.append(_("{problem}; it is taken as empty").format(problem=store.problem))
        warnings.append(
            _(
                "ignoring {path}: a {name} in the working folder is read only once you trust "
                "it (it could send your secret elsewhere); check it, then run: batchops "
                "config trust {path}"
            ).format(path=local.resolve(), name=CONFIG_NAME)
        )
    own = user_config_dir(env) / CONFIG_NAME
    return (own if own.is_file() else None), warnings


def load_profile(path: Path | None, name: str | None) -> tuple[str | None, dict[str, SettingValue]]:
    """Read one profile from the file (the file's ``default_profile`` when none is named)."""
    if path is None:
        if name:
            raise ConfigError(
                _(
                    "--profile {profile}: no {name} found in ~/.config/batchops/ (or a "
                    "trusted one in this folder); create one, trust this folder's with "
                    "'batchops config trust batchops.toml', or pass --config PATH"
                ).format(profile=name, name=CONFIG_NAME)
            )
        return None, {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise unreadable_config(path, exc) from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(
            _("{path}: 'profiles' must be a table of [profiles.NAME] sections").format(path=path)
        )
    name = name or document.get("default_profile")
    if not name:
        return None, {}
    if name not in profiles or not isinstance(profiles[name], dict):
        known = ", ".join(sorted(profiles)) or _("none")
        raise ConfigError(
            _("{path} has no profile '{profile}'; profiles there: {known}").format(
                path=path, profile=name, known=known
            )
        )
    return str(name), _checked_profile(path, str(name), profiles[name])


def _checked_profile(path: Path, name: str, raw: Mapping[str, object]) -> dict[str, SettingValue]:
    clean: dict[str, SettingValue] = {}
    for key, value in raw.items():
        if key.lower() in _SECRET_KEYS:
            raise ConfigError(
                _(
                    "{path}: profile '{profile}' holds '{key}'; never put a secret in the "
                    "file — export it and name the variable instead: "
                    'secret_env = "MY_APP_SECRET"'
                ).format(path=path, profile=name, key=key)
            )
        setting = SETTINGS.get(key)
        if setting is None:
            raise ConfigError(
                _("{path}: profile '{profile}' has unknown key '{key}'; known keys: {keys}").format(
                    path=path, profile=name, key=key, keys=", ".join(SETTINGS)
                )
            )
        if setting.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if setting.kind is str and isinstance(value, int) and key == "max_failures":
            value = str(value)
        if setting.kind is list and isinstance(value, str):
            value = [value]
        if not isinstance(value, setting.kind) or isinstance(value, bool):
            raise ConfigError(
                _("{path}: profile '{profile}' key '{key}' must be a {kind}, not {value}").format(
                    path=path,
                    profile=name,
                    key=key,
                    kind=setting.kind.__name__,
                    value=_shown(key, value),
                )
            )
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(
                _("{path}: profile '{profile}' key '{key}' must be a list of strings").format(
                    path=path, profile=name, key=key
                )
            )
        where = _("profile {profile} in {path}").format(profile=name, path=path)
        clean[key] = check_setting(key, _setting_value(value), where)
    if clean.get("gateway", "esb") not in ("esb", "apigw"):
        raise ConfigError(
            _("{path}: profile '{profile}' gateway must be 'esb' or 'apigw'").format(
                path=path, profile=name
            )
        )
    if clean.get("notify_on", "problems") not in NOTIFY_ON:
        raise ConfigError(
            _("{path}: profile '{profile}' notify_on must be 'problems' or 'always'").format(
                path=path, profile=name
            )
        )
    return clean


def _setting_value(value: object) -> SettingValue:
    """A profile's value, once its kind was checked, as the type the merge takes."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list):
        return [str(item) for item in value]
    raise TypeError(f"not a setting's value: {value!r}")


def _shown(key: str, value: object) -> str:
    if key == "notify":
        urls = value if isinstance(value, list) else [value]
        return ", ".join(notify_label(str(u)) for u in urls)
    if key == "proxy" and isinstance(value, str):
        return masked_url(value)
    return repr(value)


def resolve(
    explicit: Mapping[str, SettingValue],
    *,
    profile: str | None = None,
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Merge settings: ``explicit`` (flags, non-None) > environment > profile > default."""
    env = os.environ if env is None else env
    path, warnings = find_config(config, env)
    name, chosen = load_profile(path, profile or env.get(ENV_PROFILE) or None)
    values: dict[str, SettingValue] = {}
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
        values[key] = check_setting(key, values[key], sources[key])
    # Last of all, BlueKing's own variables: which one depends on the gateway chosen.
    found = None if values["base_url"] else blueking_base_url(str(values["gateway"]), env)
    if found is not None:
        values["base_url"] = check_setting("base_url", found[0], found[1])
        sources["base_url"] = found[1]
    return Resolved(_typed(values), sources, name, path, tuple(warnings))


def profile_language(
    profile: str | None, config: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> str | None:
    """The ``lang`` of the profile ``profile`` (else ``BATCHOPS_PROFILE``, else the file's
    default) in the file ``config`` (else the usual places), read before a command parses
    its options, to speak its language. None when there is none, or when the file cannot
    be read: the command itself then says what is wrong with it, in the language the
    rest chose."""
    env = os.environ if env is None else env
    try:
        path, _warnings = find_config(config, env)
        _name, chosen = load_profile(path, profile or env.get(ENV_PROFILE) or None)
    except (ConfigError, OSError, ValueError):
        return None
    lang = chosen.get("lang")
    return lang if isinstance(lang, str) else None


def target_source(resolved: Resolved) -> str:
    """Which file and profile (or flag, or variable) chose the ITSM address."""
    source = resolved.sources.get("base_url", "default")
    if source == "flag":
        return "--base-url"
    return shown_source(source)


def describe(resolved: Resolved, env: Mapping[str, str] | None = None) -> str:
    """``batchops config show``: every setting, its value and its source; secrets masked."""
    env = os.environ if env is None else env
    lines = []
    if resolved.config_path:
        lines.append(_("config file: {path}").format(path=resolved.config_path))
    else:
        lines.append(_("config file: none found"))
    lines.append(_("profile: {profile}").format(profile=resolved.profile or _("(none)")))
    width = max(len(k) for k in SETTINGS) + 1
    for key in SETTINGS:
        shown = resolved.values.shown(key)
        lines.append(
            f"  {key:<{width}} {padded(shown, 40)} [{shown_source(resolved.sources[key])}]"
        )
    secret_env = resolved.values.secret_env
    token_env = resolved.values.token_env
    for name, variable in (("app secret", secret_env), ("token", token_env)):
        where = shown_source(f"env {variable}")
        lines.append(f"  {name:<{width}} {padded(_(presence(env.get(variable))), 40)} [{where}]")
    return "\n".join(lines)
