"""``batchops sandbox``: serve the stand-in ITSM (:mod:`batchops.sandbox`) until Ctrl-C.

A command apart from the others: it sends nothing and reads no settings, it starts the
server that ``run --sandbox`` embeds, with the fault switches the tests and benchmarks
use. ``python -m batchops.sandbox`` is this same command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from batchops.errors import BatchopsError
from batchops.i18n import N_, _, ngettext
from batchops.process import speak_click_in

from .options import fail, param, pick
from .words import PathType, TranslatedCommand, choose_language

if TYPE_CHECKING:
    from batchops.sandbox import SandboxState

_RATE = click.FloatRange(0.0, 1.0)


class _Standalone(TranslatedCommand):
    """``sandbox``, which ``python -m batchops.sandbox`` also runs on its own: then it
    chooses its language before parsing, as the command group does for its commands."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        words = list(sys.argv[1:] if args is None else args)
        choose_language(words)
        speak_click_in(_, ngettext)
        return super().main(words, *rest, **kwargs)


@click.command(
    cls=_Standalone,
    help=N_(
        """Serve a stand-in of the ITSM API (ESB and gateway paths) until Ctrl-C.

    It answers like the real server, traps included (errors with HTTP 200, the
    double-suspend bug). App code batchops-sandbox, secret sandbox-secret. The rates
    and --latency-ms inject faults; 'python -m batchops.sandbox' is this command.

    \b
    Example:
      batchops sandbox --port 8765 --seed samples/tickets.csv
      BK_APP_CODE=batchops-sandbox BK_APP_SECRET=sandbox-secret BK_USERNAME=admin \\
        batchops run samples/tickets.csv --base-url http://127.0.0.1:8765
    """
    ),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--host", default="127.0.0.1", show_default=True, help=N_("Address to bind."))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help=N_("0 picks a free port."),
)
@click.option(
    "--seed",
    "seed_file",
    type=PathType(exists=True, dir_okay=False),
    help=N_(
        "Create the tickets named in this CSV/XLSX (the first operator of each ticket is "
        "its creator and processor)."
    ),
)
@click.option(
    "--generate",
    metavar="PREFIX:COUNT",
    multiple=True,
    help=N_("Create COUNT RUNNING tickets PREFIX0000001… whose processor is admin (repeatable)."),
)
@click.option("--app-code", default="batchops-sandbox", show_default=True, help=N_("The app code."))
@click.option("--not-whitelisted", is_flag=True, help=N_("Require a bk_token, not bk_username."))
@click.option("--legacy-codes", is_flag=True, help=N_("Answer 3900005 like servers before 2022."))
@click.option("--no-log", is_flag=True, help=N_("Keep the counters, not the operation log."))
@click.option(
    "--max-page-size",
    type=click.IntRange(1, 10_000),
    default=10_000,
    show_default=True,
    help=N_("At most this many get_tickets items a page, whatever page_size asks."),
)
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0.0, help=N_("Delay every answer.")
)
@click.option(
    "--error-5xx-rate", type=_RATE, default=0.0, help=N_("Share of operations answered HTTP 5xx.")
)
@click.option(
    "--rate-limit-rate", type=_RATE, default=0.0, help=N_("Share of operations rate-limited.")
)
@click.option(
    "--backend-timeout-rate",
    type=_RATE,
    default=0.0,
    help=N_("Share of operations answered 'backend timed out' (applied or not, by a coin)."),
)
@click.option(
    "--lost-rate", type=_RATE, default=0.0, help=N_("Share of operations whose answer is lost.")
)
@click.option(
    "--lost-mode",
    type=click.Choice(["hang", "drop"]),
    default="hang",
    show_default=True,
    help=N_("A lost answer hangs (for --lost-hang-s) or drops the connection."),
)
@click.option(
    "--lost-hang-s",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help=N_("How long a lost answer hangs."),
)
@click.option(
    "--fault-seed", type=int, default=0, show_default=True, help=N_("Seed of the faults' dice.")
)
def sandbox(**params: object) -> None:
    from batchops import sandbox as stand_in

    seeds = pick(_Seeds, params)
    rows = seeds.rows()
    generated = seeds.generated()
    config = pick(
        stand_in.SandboxConfig,
        params,
        whitelisted=not params["not_whitelisted"],
        record_log=not params["no_log"],
        faults=pick(stand_in.Faults, params, seed=params["fault_seed"]),
    )
    host, port = param(params, "host", str), param(params, "port", int)
    stand_in.serve(
        host=host, port=port, config=config, seed_rows=rows, generate=generated, announce=_announce
    )


def _announce(url: str, state: SandboxState) -> None:
    """Where the stand-in listens and how to authenticate, for the person who started it."""
    from batchops import sandbox as stand_in

    config = state.config
    prefixes = stand_in.GATEWAY_PREFIXES
    stage = url + prefixes[1].removesuffix(prefixes[0])
    secret = (
        _("the demo secret {secret}").format(secret=repr(stand_in.DEFAULT_APP_SECRET))
        if config.app_secret == stand_in.DEFAULT_APP_SECRET
        else _("the one this sandbox was configured with")
    )
    user = (
        _("bk_username accepted (app is whitelisted)")
        if config.whitelisted
        else _("a non-empty bk_token is required")
    )
    lines = [
        _("batchops sandbox: ITSM stand-in listening on {url}").format(url=url),
        # The exact values --base-url takes: batchops adds each gateway's API path.
        "  " + _("ESB (the default): --base-url {url}").format(url=url),
        "  " + _("API gateway: --gateway apigw --base-url {stage}").format(stage=stage),
        "  "
        + _("app code: {app_code}; app secret: {secret}").format(
            app_code=config.app_code, secret=secret
        ),
        "  "
        + _("user: {user}; tickets seeded: {count}").format(user=user, count=len(state.tickets)),
        "  " + _("stats: {url}/_sandbox/stats    (Ctrl-C to stop)").format(url=url),
    ]
    for line in lines:
        print(line, flush=True)


@dataclass(frozen=True, slots=True)
class _Seeds:
    """The tickets the stand-in starts with: those of a sheet, and generated ones."""

    seed_file: str | None = None
    generate: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """(sn, operator) of every row of the seed sheet."""
        from batchops.sheet import load_batch

        if not self.seed_file:
            return []
        try:
            batch = load_batch(self.seed_file, include_hidden=True)
        except BatchopsError as error:
            fail(error)
            return []
        return [(str(batch.sn[i]), str(batch.operator[i])) for i in range(len(batch))]

    def generated(self) -> list[tuple[str, int]]:
        """``--generate PREFIX:COUNT``, each as (prefix, count)."""
        out: list[tuple[str, int]] = []
        for spec in self.generate:
            prefix, _colon, count = spec.rpartition(":")
            if not prefix or not count.isdigit():
                raise click.BadParameter(
                    _("use PREFIX:COUNT, e.g. BENCH:20000"), param_hint="--generate"
                )
            out.append((prefix, int(count)))
        return out
