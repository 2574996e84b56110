"""Deployment settings read from the environment once, at init (``Settings.from_env()``).

Routing and delivery policy live in the TOML config (``notifier.config``); these are the
names of the resources and the knobs an operator sets per deployment:

- ``AWS_REGION`` / ``AWS_DEFAULT_REGION``: region (default ``us-east-1``).
- ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``: read by botocore itself.
- ``NOTIFIER_CONFIG``: routing TOML (default: the built-in ``default_config.toml``).
- ``NOTIFIER_TEMPLATES``: template directory (default: the built-in template set).
- ``NOTIFIER_LEDGER_TABLE``: ledger table (default ``notifier-ledger``).
- ``NOTIFIER_FAILURE_QUEUE_URL``, else ``NOTIFIER_FAILURE_QUEUE``: a queue name resolved on
  first use (default ``notifier-failures``).
- ``NOTIFIER_SENDER``: default sender (default ``notifications@example.com``).
- ``NOTIFIER_MAX_CONCURRENCY``: concurrent sends per batch (default 64).
- ``NOTIFIER_MAX_SEND_RATE``: sends/s for email channels, overriding the account's rate.
- ``NOTIFIER_AWS_CLIENTS``: ``fast`` (default: the SES send and the ledger go through
  ``notifier.aws``'s hand-signed clients) or ``aiobotocore`` (every call through aiobotocore).
  SQS and SES quota reads always use aiobotocore.
- ``NOTIFIER_EXPIRY_GUARD_SECONDS``: a record older than this that fails transiently is
  written in full to the failure queue before the stream's 24 h retention can drop it
  (default 72000 = 20 h).
- ``NOTIFIER_SES_CONFIGURATION_SET``: default SES configuration set of email channels (a
  channel's own ``configuration_set`` option wins).
- ``NOTIFIER_PREFERENCES_TABLE``: the users' preferences and suppressions (default
  ``notifier-preferences``), read when the config enables ``[preferences]``.
- ``NOTIFIER_RECONCILE_QUEUE_URL``: the delayed queue where ``unknown_outcome = "reconcile"``
  parks unknown sends (required by that policy).
- ``NOTIFIER_UNSUBSCRIBE_KEY``: the default secret reference of ``[unsubscribe] key``.
- ``NOTIFIER_UNSUBSCRIBE_BASE_URL``: overrides ``[unsubscribe] base_url`` (the stack's
  function URL, known only at deploy time).
- ``NOTIFIER_UNKNOWN_OUTCOME``: overrides ``[delivery] unknown_outcome`` (``retry``,
  ``assume_sent`` or ``reconcile``).
- ``NOTIFIER_PREFERENCES_ENABLED``: ``true``/``false`` overrides ``[preferences] enabled``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["AWS_CLIENT_MODES", "Settings", "SettingsError"]

#: Values of ``NOTIFIER_AWS_CLIENTS``.
AWS_CLIENT_MODES = ("fast", "aiobotocore")


class SettingsError(ValueError):
    """An environment variable holds a value notifier cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the handler needs from its environment.

    ``endpoint_url`` is normally ``None``: botocore reads ``AWS_ENDPOINT_URL`` and
    ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so per-service overrides keep working.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    config_path: str | None = None
    templates_dir: str | None = None
    ledger_table: str = "notifier-ledger"
    failure_queue_url: str | None = None
    failure_queue_name: str = "notifier-failures"
    sender: str = "notifications@example.com"
    max_concurrency: int = 64
    #: Overrides every email channel's send rate (``NOTIFIER_MAX_SEND_RATE``, sends/s).
    max_send_rate: float | None = None
    #: ``"fast"`` (notifier.aws clients for the SES send and the ledger) or ``"aiobotocore"``.
    aws_clients: str = "fast"
    #: Default ``configuration_set`` of email channels (``NOTIFIER_SES_CONFIGURATION_SET``).
    configuration_set: str | None = None
    #: Age (seconds) past which a transiently failing record is parked on the failure queue.
    expiry_guard_seconds: float = 72_000.0
    preferences_table: str = "notifier-preferences"
    reconcile_queue_url: str | None = None
    unsubscribe_base_url: str | None = None
    unknown_outcome: str | None = None
    preferences_enabled: bool | None = None

    def __post_init__(self) -> None:
        if self.unknown_outcome not in (None, "retry", "assume_sent", "reconcile"):
            raise SettingsError(
                "NOTIFIER_UNKNOWN_OUTCOME must be retry, assume_sent or reconcile, got "
                f"{self.unknown_outcome!r}"
            )
        if self.aws_clients not in AWS_CLIENT_MODES:
            raise SettingsError(
                f"NOTIFIER_AWS_CLIENTS must be one of {', '.join(AWS_CLIENT_MODES)}, "
                f"got {self.aws_clients!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw_conc = env.get("NOTIFIER_MAX_CONCURRENCY", "64")
        try:
            concurrency = int(raw_conc)
        except ValueError:
            concurrency = 0
        if concurrency < 1:
            raise SettingsError(
                f"NOTIFIER_MAX_CONCURRENCY must be a positive integer, got {raw_conc!r}"
            )
        raw_rate = env.get("NOTIFIER_MAX_SEND_RATE")
        rate: float | None = None
        if raw_rate:
            try:
                rate = float(raw_rate)
            except ValueError:
                rate = -1.0
            if not rate > 0:
                raise SettingsError(
                    f"NOTIFIER_MAX_SEND_RATE must be a positive number, got {raw_rate!r}"
                )
        raw_guard = env.get("NOTIFIER_EXPIRY_GUARD_SECONDS") or "72000"
        try:
            guard = float(raw_guard)
        except ValueError:
            guard = -1.0
        if not 0 < guard < 86_400:
            raise SettingsError(
                "NOTIFIER_EXPIRY_GUARD_SECONDS must be a number of seconds between 0 and 86400 "
                f"(the stream's retention), got {raw_guard!r}"
            )
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=None,
            config_path=env.get("NOTIFIER_CONFIG") or None,
            templates_dir=env.get("NOTIFIER_TEMPLATES") or None,
            ledger_table=env.get("NOTIFIER_LEDGER_TABLE") or "notifier-ledger",
            failure_queue_url=env.get("NOTIFIER_FAILURE_QUEUE_URL") or None,
            failure_queue_name=env.get("NOTIFIER_FAILURE_QUEUE") or "notifier-failures",
            sender=env.get("NOTIFIER_SENDER") or "notifications@example.com",
            max_concurrency=concurrency,
            max_send_rate=rate,
            aws_clients=(env.get("NOTIFIER_AWS_CLIENTS") or "fast").strip().lower(),
            configuration_set=env.get("NOTIFIER_SES_CONFIGURATION_SET") or None,
            expiry_guard_seconds=guard,
            preferences_table=env.get("NOTIFIER_PREFERENCES_TABLE") or "notifier-preferences",
            reconcile_queue_url=env.get("NOTIFIER_RECONCILE_QUEUE_URL") or None,
            unsubscribe_base_url=env.get("NOTIFIER_UNSUBSCRIBE_BASE_URL") or None,
            unknown_outcome=(env.get("NOTIFIER_UNKNOWN_OUTCOME") or "").strip().lower() or None,
            preferences_enabled=_flag(env, "NOTIFIER_PREFERENCES_ENABLED"),
        )


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
