"""The command line in the user's language: which language a command speaks, and click's
help shown through the catalogs.

The language is chosen before click parses anything (:func:`choose_language`), because
``--help`` and usage errors are written while parsing, before any option's callback
runs. click's own words ("Usage:", "Error: No such option") come from its gettext calls,
which :func:`batchops.process.speak_click_in` sends to batchops' catalogs; help text,
written once when the commands are defined, is looked up when it is shown
(:class:`TranslatedCommand`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import click

from batchops.i18n import N_, Language, _, choose, parse_language, use
from batchops.settings import profile_language


def flag_language(args: Sequence[str]) -> str | None:
    """The value of ``--lang`` in ``args`` (the last one wins, as click would have it)."""
    return flag_value(args, "--lang")


def flag_value(args: Sequence[str], option: str) -> str | None:
    """The value of ``option`` in ``args``, read before click parses them (the last one
    wins, as click would have it)."""
    found: str | None = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == option and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith(option + "="):
            found = arg.partition("=")[2]
    return found


def profile_lang(args: Sequence[str]) -> str | None:
    """The ``lang`` of the profile ``args`` name (``--profile``, ``--config``), or of the
    default one; None when there is none or the file cannot be read (the command says so)."""
    return profile_language(flag_value(args, "--profile"), flag_value(args, "--config"))


def choose_language(args: Sequence[str], profile_lang: str | None = None) -> Language:
    """Speak, for this command, what ``args``, ``BATCHOPS_LANG``, the profile or the
    locale say (:func:`batchops.i18n.choose`)."""
    lang, _source = choose(flag_language(args), profile_lang)
    use(lang)
    return lang


def _check_lang(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and parse_language(value) is None:
        raise click.BadParameter(
            _("{value!r} is not a language batchops speaks; use zh or en.").format(value=value),
            ctx=ctx,
            param=param,
        )
    return value


#: ``--lang``, which every command takes (:meth:`TranslatedCommand.get_params`); the
#: choice itself was made before parsing, from the same words.
LANG_OPTION = click.Option(
    ["--lang"],
    metavar="zh|en",
    expose_value=False,
    is_eager=True,
    callback=_check_lang,
    help=N_(
        "Language of messages, help and ticket text (default: BATCHOPS_LANG, the profile, LANG)."
    ),
)


@contextlib.contextmanager
def _shown(target: Any, attr: str) -> Iterator[None]:
    """``target.attr`` in the language in use while help is written."""
    original = getattr(target, attr, None)
    if isinstance(original, str) and original:
        setattr(target, attr, _(original))
    try:
        yield
    finally:
        if isinstance(original, str) and original:
            setattr(target, attr, original)


class TranslatedCommand(click.Command):
    """A command whose help, options' help and epilog are shown in the language in use,
    and which takes ``--lang``."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return [*params[:-1], LANG_OPTION, *params[-1:]]

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _shown(self, "help"):
            super().format_help_text(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with contextlib.ExitStack() as stack:
            for param in self.get_params(ctx):
                stack.enter_context(_shown(param, "help"))
            super().format_options(ctx, formatter)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _shown(self, "epilog"):
            super().format_epilog(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        with _shown(self, "short_help"), _shown(self, "help"):
            return super().get_short_help_str(limit)


class TranslatedGroup(TranslatedCommand, click.Group):
    """A group of :class:`TranslatedCommand` (its own help is translated too)."""

    command_class = TranslatedCommand
    #: A group made inside this one (``config``) is of this class too.
    group_class = type
