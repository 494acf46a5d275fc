"""BlueKing's own environment: where a BlueKing app's clients (bkapi-client-core) find
the ESB and the API gateway, so batchops run inside such an app needs no address of its
own. Read only when no flag, ``BATCHOPS_BASE_URL`` or profile names ITSM
(:func:`batchops.settings.sources.resolve` decides that).
"""

from __future__ import annotations

from collections.abc import Mapping

from batchops.errors import ConfigError
from batchops.i18n import _
from batchops.secrets import masked_url

#: BlueKing's own variables (a BlueKing app has them set): the ESB host, and the API
#: gateway's URL template (``http://bkapi.example.com/api/{api_name}/``).
ENV_COMPONENT_API_URL = "BK_COMPONENT_API_URL"
ENV_API_URL_TMPL = "BK_API_URL_TMPL"
#: ITSM's name on the API gateway, and the stage BlueKing's clients call by default.
ITSM_API_NAME = "bk-itsm"
DEFAULT_STAGE = "prod"


def blueking_base_url(gateway: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The ITSM address BlueKing's own variables give, and its source, when no flag,
    ``BATCHOPS_BASE_URL`` or profile named one: ``BK_COMPONENT_API_URL`` for the ESB;
    for the API gateway ``BK_API_URL_TMPL`` with ``{api_name}`` (or ``{gateway_name}``)
    as ``bk-itsm``, then the stage, as bkapi-client-core builds it
    (``http://bkapi.example.com/api/{api_name}/`` → ``…/api/bk-itsm/prod``)."""
    if gateway != "apigw":
        url = env.get(ENV_COMPONENT_API_URL, "").strip()
        return (url, f"env {ENV_COMPONENT_API_URL}") if url else None
    template = env.get(ENV_API_URL_TMPL, "").strip()
    if not template:
        return None
    if "{api_name}" not in template and "{gateway_name}" not in template:
        raise ConfigError(
            _(
                "{variable} must hold {{api_name}} (as in "
                "http://bkapi.example.com/api/{{api_name}}/), not {value}; "
                "fix it or pass --base-url"
            ).format(variable=ENV_API_URL_TMPL, value=repr(masked_url(template)))
        )
    # Replaced, not str.format()ed: another brace in the text must not raise.
    url = template.replace("{api_name}", ITSM_API_NAME).replace("{gateway_name}", ITSM_API_NAME)
    return f"{url.rstrip('/')}/{DEFAULT_STAGE}", f"env {ENV_API_URL_TMPL}"
