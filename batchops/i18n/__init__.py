"""The language batchops speaks (Chinese or English) and its message catalogs.

- :mod:`.language`: which language (``--lang`` > ``BATCHOPS_LANG`` > a profile > the
  locale variables > English), and the ``Blueking-Language`` header that goes with it.
- :mod:`.translate`: ``_``, ``N_`` and ``ngettext`` over the gettext catalogs in
  ``locale/``; :mod:`.catalog` (a maintainer's tool, needs Babel) extracts, updates,
  compiles and checks them.
- :mod:`.width`: how many terminal columns text takes (a Chinese character two), to line
  columns up in either language.
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
from .width import cells, padded, wide

__all__ = [
    "ENV_LANG",
    "LANGUAGES",
    "LOCALE_VARIABLES",
    "N_",
    "Language",
    "_",
    "blueking_language",
    "cells",
    "choose",
    "current",
    "ngettext",
    "padded",
    "parse_language",
    "use",
    "using",
    "wide",
]
