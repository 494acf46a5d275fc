"""The trust store: which working-folder ``batchops.toml`` files the user allowed, as what.

``batchops config trust PATH`` records the file's resolved path and sha256 in
``trusted.json`` in the user's config folder (like ``direnv allow``); :func:`is_trusted`
then holds only while the file is byte for byte what was trusted. The store is JSON, so
no path can end a record or start another: a path is one JSON string, a newline in it
escaped. Paths with control characters are refused all the same, since no one means
them and they print as something else than they are.

The store of earlier versions (``trusted.txt``, one ``sha256 path`` a line) is not read:
a path with a newline could add a line to it, and such a line cannot be told from an
honest one. A file trusted there is ignored with the usual warning until trusted again.
A store that cannot be read is taken as empty, with a warning that says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchops.errors import ConfigError
from batchops.i18n import _

TRUST_NAME = "trusted.json"
#: What the store says it is, so a file of another shape is never taken for one.
TRUST_FORMAT = "batchops-trust-1"


def user_config_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/batchops``, else ``~/.config/batchops``."""
    xdg = env.get("XDG_CONFIG_HOME")
    home = Path(xdg) if xdg else Path(env.get("HOME", str(Path.home()))) / ".config"
    return home / "batchops"


def trust_store_path(env: Mapping[str, str]) -> Path:
    return user_config_dir(env) / TRUST_NAME


def control_characters(text: str) -> list[str]:
    """The control, format (zero-width, bidi) and line-separator characters in ``text``,
    as ``U+000A``: none belongs in a path someone typed, and each can make a printed
    path look like another."""
    unfit = ("Cc", "Cf", "Zl", "Zp")
    return sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in unfit})


@dataclass(frozen=True, slots=True)
class TrustStore:
    """The trusted files (resolved path -> sha256), and why the store could not be read."""

    files: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_digest(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def read_store(env: Mapping[str, str]) -> TrustStore:
    """The store as it is on disk: empty when there is none, empty with a ``problem``
    when it cannot be read or is not one this module wrote."""
    path = trust_store_path(env)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return TrustStore()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return TrustStore(
            problem=_("cannot read the trust store {path} ({error})").format(path=path, error=exc)
        )
    files = document.get("files") if isinstance(document, dict) else None
    well_formed = (
        isinstance(document, dict)
        and document.get("format") == TRUST_FORMAT
        and isinstance(files, dict)
        and all(isinstance(p, str) and not control_characters(p) for p in files)
        and all(_is_digest(d) for d in files.values())
    )
    if not well_formed or not isinstance(files, dict):
        return TrustStore(
            problem=_("the trust store {path} is not one batchops wrote").format(path=path)
        )
    return TrustStore(files={str(p): str(d) for p, d in files.items()})


def _refuse_control_characters(given: str, target: Path) -> None:
    found = control_characters(given) or control_characters(str(target))
    if found:
        raise ConfigError(
            _(
                "cannot trust {path}: its path holds control characters ({characters}); "
                "rename the file or its folder, then trust it again"
            ).format(path=repr(given), characters=", ".join(found))
        )


@dataclass(frozen=True, slots=True)
class Trusted:
    """Where the trust was recorded, and what was wrong with the store it replaced."""

    record: Path
    replaced_problem: str | None = None


def trust_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Trusted:
    """Record ``path`` (as it is now) as trusted."""
    env = os.environ if env is None else env
    given = os.fspath(path)
    target = Path(given).expanduser().resolve()
    _refuse_control_characters(given, target)
    if not target.is_file():
        raise ConfigError(
            _("{path} is not a file; pass the batchops.toml to trust").format(path=target)
        )
    try:
        # A file that does not parse is not worth trusting; say so now.
        tomllib.loads(target.read_text(encoding="utf-8"))
        digest = _digest(target)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise unreadable_config(target, exc) from None
    store = read_store(env)
    files = {**store.files, str(target): digest}
    record = trust_store_path(env)
    document = {"format": TRUST_FORMAT, "files": dict(sorted(files.items()))}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{record.name}.tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, record)
    except OSError as exc:
        raise ConfigError(
            _("cannot record the trust in {path}: {error}").format(
                path=record, error=exc.strerror or exc
            )
        ) from None
    return Trusted(record, store.problem)


def is_trusted(path: Path, env: Mapping[str, str], store: TrustStore | None = None) -> bool:
    """True when ``path`` was trusted and has not changed since."""
    target = path.resolve()
    if target.parent == user_config_dir(env).resolve():
        return True  # the user's own folder: theirs by definition
    digest = (read_store(env) if store is None else store).files.get(str(target))
    try:
        return digest is not None and digest == _digest(target)
    except OSError:
        return False


#: Where tomllib says the file went wrong ("Expected '=' … (at line 1, column 5)").
_TOML_PLACE = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def unreadable_config(path: Path, error: Exception) -> ConfigError:
    """The refusal of a config file that cannot be read. A TOML mistake's place is said
    in the language in use; what the parser expected stays its own words."""
    found = _TOML_PLACE.match(str(error)) if isinstance(error, tomllib.TOMLDecodeError) else None
    if found is None:
        return ConfigError(
            _("cannot read config file {path}: {error}").format(path=path, error=error)
        )
    return ConfigError(
        _("cannot read config file {path}: {error} (at line {line}, column {column})").format(
            path=path, error=found["what"], line=found["line"], column=found["column"]
        )
    )
