"""Where SESv2 requests go, resolved once the way botocore resolves it.

Order: an explicit ``endpoint_url``; then botocore's configured endpoints
(``AWS_ENDPOINT_URL_SESV2``, ``AWS_ENDPOINT_URL``, the ``endpoint_url`` settings of the shared
config file, all disabled by ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``); then the regional
endpoint ``https://email.<region>.<dns suffix>``. Region: explicit, else botocore's
(``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile). Anything this module does not model
(FIPS or dual-stack endpoints, non-commercial partitions) is refused with a clear error rather
than guessed: use aiobotocore for those.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from botocore.exceptions import NoRegionError

if TYPE_CHECKING:
    from botocore.session import Session

__all__ = [
    "SIGNING_NAME",
    "UnsupportedEndpointError",
    "configured_endpoint",
    "resolve_region",
    "resolve_sesv2_endpoint",
]

#: SESv2 signs as service "ses".
SIGNING_NAME = "ses"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class UnsupportedEndpointError(ValueError):
    """The configuration asks for an endpoint variant the fast client does not resolve."""


def resolve_region(session: Session, region_name: str | None = None) -> str:
    """The region botocore would use for a client of this session."""
    region = region_name or session.get_config_variable("region")
    if not region:
        raise NoRegionError()
    return str(region)


def configured_endpoint(session: Session, client_name: str) -> str | None:
    """botocore's configured endpoint for ``client_name`` (env, config file), else ``None``."""
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    from botocore.configprovider import ConfiguredEndpointProvider

    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name=client_name,
    )
    url = provider.provide()
    return str(url) if url else None


def resolve_sesv2_endpoint(session: Session, region: str, endpoint_url: str | None = None) -> str:
    """The endpoint URL botocore's sesv2 client would send ``SendEmail`` to."""
    if endpoint_url:
        return endpoint_url
    configured = configured_endpoint(session, "sesv2")
    if configured:
        return configured
    for variant in ("use_fips_endpoint", "use_dualstack_endpoint"):
        if session.get_config_variable(variant):
            raise UnsupportedEndpointError(f"{variant} is not supported by the fast SES client")
    if not _REGION_RE.match(region):
        raise UnsupportedEndpointError(f"cannot resolve an SES endpoint for region {region!r}")
    if region.startswith("cn-"):
        return f"https://email.{region}.amazonaws.com.cn"
    if region.startswith(("us-iso", "eu-isoe")):
        raise UnsupportedEndpointError(f"partition of region {region!r} is not supported")
    return f"https://email.{region}.amazonaws.com"
