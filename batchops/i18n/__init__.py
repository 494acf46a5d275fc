"""The language batchops speaks (Chinese or English) and its message catalogs.

- :mod:`.language`: which language (``--lang`` > ``BATCHOPS_LANG`` > a profile > the
  locale variables > English), and the ``Blueking-Language`` header that goes with it.
- :mod:`.translate`: ``_``, ``N_`` and ``ngettext`` over the gettext catalogs in
  ``locale/``; :mod:`.catalog` (a maintainer's tool, needs Babel) extracts, updates,
  compiles and checks them.
"""

from .language import (
    ENV_LANG,
    LANGUAGES,
    LOCALE_VARIABLES,
    Language,
    blueking_language,
    choose,
    current,
    parse_language,
    use,
    using,
)
from .translate import N_, _, ngettext

__all__ = [
    "ENV_LANG",
    "LANGUAGES",
    "LOCALE_VARIABLES",
    "N_",
    "Language",
    "_",
    "blueking_language",
    "choose",
    "current",
    "ngettext",
    "parse_language",
    "use",
    "using",
]
