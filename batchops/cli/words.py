"""The command line in the user's language: which language a command speaks, and click's
help shown through the catalogs.

The language is chosen before click parses anything (:func:`choose_language`), because
``--help`` and usage errors are written while parsing, before any option's callback
runs. click's own words ("Usage:", "Error: No such option") come from its gettext calls,
which :func:`batchops.process.speak_click_in` sends to batchops' catalogs; help text,
written once when the commands are defined, is looked up when it is shown
(:class:`TranslatedCommand`): a command's ``help`` and ``epilog``, each option's ``help``
(with its fields, such as a range's rule, filled then: :class:`HelpOption`), and the
exit-code table (:data:`EXIT_CODES`, written by :func:`batchops.exits.help_text`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import click

from batchops.exits import help_text
from batchops.i18n import ENV_LANG, N_, Language, _, cells, choose, parse_language, use
from batchops.i18n import wide as _wide
from batchops.settings import profile_language

F = TypeVar("F", bound=Callable[..., Any])

#: A field of an option's help: its text, or what makes it when the help is shown.
HelpField = str | Callable[[], object]

#: The epilog of a command whose ``--help`` ends with the exit-code table
#: (:func:`batchops.exits.help_text`), written in the language in use when shown.
EXIT_CODES = "\0batchops exit codes"

#: click's word after a required option's help ("[required]"): click looks it up through
#: a variable (``_(extra["required"])``), which extraction cannot read, so it is marked here.
N_("required")


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
    named = os.environ.get(ENV_LANG, "")
    flagged = ctx.find_root().meta.get("batchops.lang_flag", False)
    if value is None and not flagged and named.strip() and parse_language(named) is None:
        # Not a choice, so the locale spoke instead; a cron job's typo is still said.
        raise click.UsageError(
            _(
                "{name} is {value}, not a language batchops speaks; set it to zh or en, or unset it"
            ).format(name=ENV_LANG, value=repr(named)),
            ctx=ctx,
        )
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


class PathType(click.Path):
    """``click.Path`` whose word for itself (``file``, in its errors: "File 'x' does not
    exist.") is said in the language in use: click makes the word when the commands are
    defined, before any language is chosen. An option's metavar stays FILE, as in help."""

    @property
    def name(self) -> str:
        return _(self._word)

    @name.setter
    def name(self, word: str) -> None:
        self._word = word

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return self._word.upper() if param.param_type_name == "option" else None


class HelpOption(click.Option):
    """An option whose help has named fields, filled when the help is shown
    (``help=N_("… ({rule})")`` with ``help_fields={"rule": RANGES["rate"].rule}``), so
    the sentence is translated whole and its parts are said in the language in use."""

    def __init__(
        self, *args: Any, help_fields: Mapping[str, HelpField] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.help_fields = dict(help_fields or {})

    def shown_help(self, text: str) -> str:
        """``text`` (the help, translated) with its fields filled."""
        fields = {k: v if isinstance(v, str) else v() for k, v in self.help_fields.items()}
        return text.format(**fields)


def option(*decls: str, help_fields: Mapping[str, HelpField], **attrs: Any) -> Callable[[F], F]:
    """``click.option`` for a help with fields (:class:`HelpOption`)."""
    return click.option(*decls, cls=HelpOption, help_fields=help_fields, **attrs)


def _translated(target: Any, text: str) -> str:
    """``text`` (an attribute of ``target``) as it is shown in the language in use."""
    if text == EXIT_CODES:
        return help_text()
    shown = _(text)
    return target.shown_help(shown) if isinstance(target, HelpOption) else shown


def shown_help(param: click.Parameter) -> str:
    """``param``'s help as ``--help`` shows it in the language in use ("" without one)."""
    text = getattr(param, "help", None)
    return _translated(param, text) if isinstance(text, str) and text else ""


@contextlib.contextmanager
def _shown(target: Any, attr: str) -> Iterator[None]:
    """``target.attr`` in the language in use while help is written."""
    original = getattr(target, attr, None)
    if isinstance(original, str) and original:
        setattr(target, attr, _translated(target, original))
    try:
        yield
    finally:
        if isinstance(original, str) and original:
            setattr(target, attr, original)


#: A token of wide text: a run of blanks, one wide character (a line may break after
#: any), or a run of anything else (a word, an option's name, a path).
_TOKEN = re.compile(
    r"\s+|[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]|[^\s\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+"
)
#: What never starts a line (Chinese closing punctuation stays with what it closes).
_NO_LINE_START = frozenset("，。；：、）》」』！？”’")
#: What never ends a line (an opening bracket stays with what it opens).
_NO_LINE_END = frozenset("（《「『“‘")


def _fill(text: str, width: int, first: str, rest: str) -> list[str]:
    """One paragraph of wide text in lines of at most ``width`` columns (a word longer
    than that has a line of its own), breaking between Chinese characters too, never
    before closing punctuation nor after an opening bracket."""
    lines: list[str] = []
    indent, line = first, list[str]()  # the line's tokens
    for token in _TOKEN.findall(text):
        token = " " if token.isspace() else token
        if token == " " and not line:
            continue
        if token != " " and line and cells(indent + "".join([*line, token])) > width:
            # Carry down what may not end a line, and the token before a closing mark.
            carried: list[str] = []
            while line and (line[-1] in _NO_LINE_END or (token in _NO_LINE_START and not carried)):
                carried.insert(0, line.pop())
            if not "".join(line).strip():  # nowhere to break: the line runs over
                line += carried
            else:
                lines.append((indent + "".join(line)).rstrip())
                indent, line = rest, [t for t in carried if t != " "]
        line.append(token)
    lines.append((indent + "".join(line)).rstrip())
    return lines


def _joined(lines: list[str]) -> str:
    """A paragraph's lines as one: a blank between them, but not between two Chinese
    characters (Chinese puts none between words)."""
    text = lines[0]
    for line in lines[1:]:
        text += line if text and line and _wide(text[-1]) and _wide(line[0]) else " " + line
    return text


def wrap_text(text: str, width: int, first: str = "", rest: str = "") -> str:
    """click's ``wrap_text`` (paragraphs kept, a ``\\b`` paragraph as written) that also
    wraps Chinese, which has no blanks to break at and takes two columns a character."""
    if not any(_wide(char) for char in text):
        return click.formatting.wrap_text(text, width, first, rest, preserve_paragraphs=True)
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.expandtabs()):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        extra = " " * (len(lines[0]) - len(lines[0].lstrip()))
        if lines[0].strip() == "\b":
            out.append("\n".join(f"{rest}{extra}{line}" for line in lines[1:]))
        else:
            paragraph = _joined([line.strip() for line in lines])
            out.append("\n".join(_fill(paragraph, width, first + extra, rest + extra)))
    return "\n\n".join(out)


class _Formatter(click.HelpFormatter):
    """click's help formatter, wrapping Chinese text by its width on the terminal."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write(wrap_text(text, self.width, indent, indent))
        self.write("\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_col = min(max((cells(first) for first, _second in rows), default=0), col_max)
        first_col += col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if cells(first) <= first_col - col_spacing:
                self.write(" " * (first_col - cells(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            text_width = max(self.width - first_col - 2, 10)
            lines = wrap_text(second, text_width).splitlines() or [""]
            self.write(f"{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


class _Context(click.Context):
    formatter_class = _Formatter


class TranslatedCommand(click.Command):
    """A command whose help, options' help and epilog are shown in the language in use,
    and which takes ``--lang``."""

    context_class = _Context

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return [*params[:-1], LANG_OPTION, *params[-1:]]

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        # click makes it once per command, in the language of that moment: its help is
        # kept as the message itself, and translated when shown, as every other help.
        made = getattr(self, "_help_option", None) is None
        option = super().get_help_option(ctx)
        if made and option is not None:
            option.help = N_("Show this message and exit.")
        return option

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
