"""What a person is told after a fatal answer (:func:`batchops.run.prompts.fatal_fix`):
which credentials to fix, by the code table."""

from __future__ import annotations

import pytest

from batchops.itsm.answers import CODE_TABLE
from batchops.itsm.transport import Answer, Verdict
from batchops.run.prompts import Advice, fatal_fix


class _Sources(Advice):
    """Advice whose only part used here is the list of credentials it names."""

    def __init__(self) -> None:
        pass

    def credential_sources(self) -> str:
        return "app code 'x' (from the flag)"


FATAL_CODES = sorted(c for c, rule in CODE_TABLE.items() if rule.verdict is Verdict.FATAL)


@pytest.mark.parametrize("code", FATAL_CODES)
def test_the_fix_names_the_credentials_when_the_tables_column_says_so(code: int) -> None:
    """Authentication, a user's or an app's missing permission: the credentials used are
    named; a component or API not found, or switched off, is no credential's fault."""
    answer = Answer(Verdict.FATAL, code, "refused", 200)
    fix = fatal_fix(answer, _Sources(), sandbox=False)
    if CODE_TABLE[code].credentials:
        assert fix == "the credentials or the app's permissions; used: app code 'x' (from the flag)"
    else:
        assert fix == ""
