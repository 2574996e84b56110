"""Secret references: where a secret lives, named in the config; never the secret itself.

A reference is one of:

- ``env:NAME``: the environment variable ``NAME`` (set on the function by the deployment);
- ``ssm:/path/to/param``: an SSM Parameter Store parameter (``GetParameter`` with
  ``WithDecryption``, so a ``SecureString`` is decrypted; a name or ARN works too);
- ``secretsmanager:<id>`` or ``secretsmanager:<id>#<json-key>``: a Secrets Manager secret (name
  or ARN; ``GetSecretValue``, current version), optionally one string field of a JSON secret.

They are resolved once, when the channel (or whatever needs them) is built, so a send never
waits on SSM or Secrets Manager, and a missing secret stops the cold start with a
:class:`~notifier.config.ConfigError` instead of failing every send. The AWS clients are the
injected ones (``clients["ssm"]``, ``clients["secretsmanager"]``) or short-lived aiobotocore
clients of the handler's session, closed after the read.

A secret's value is never logged and never part of an exception message: errors name the
config key and the reference (``channels.hooks.secret: ssm:/notifier/hook: ParameterNotFound``)
and, for AWS failures, only the error code (not the service's message). :class:`SecretValue`
keeps the value out of ``repr`` and ``str`` so it cannot slip into a log line by accident.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from notifier.config import ConfigError

__all__ = [
    "SecretReference",
    "SecretResolver",
    "SecretValue",
    "parse_reference",
    "resolve_secret",
]

_SCHEMES = ("env", "ssm", "secretsmanager")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class SecretReference:
    """A parsed reference: ``scheme`` (env, ssm, secretsmanager), ``name``, optional ``field``."""

    scheme: str
    name: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}" + (f"#{self.field}" if self.field else "")


class SecretValue:
    """A resolved secret: ``reveal()`` gives the text; ``repr``/``str`` never do."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: SecretReference) -> None:
        self._value = value
        self.reference = reference

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.reference}, <redacted>)"

    __str__ = __repr__


def parse_reference(text: object, where: str) -> SecretReference:
    """``text`` as a reference; :class:`ConfigError` naming ``where`` (the config key) if it is
    not one. A literal secret pasted in the config is refused without being echoed."""
    if not isinstance(text, str):
        raise ConfigError(f"{where}: a secret reference must be a string")
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in _SCHEMES or not rest:
        # Possibly the secret itself: do not repeat it.
        raise ConfigError(
            f"{where}: not a secret reference; write env:NAME, ssm:/path or "
            "secretsmanager:<id>[#json-key] (the secret itself never goes in the config)"
        )
    if scheme == "env":
        if not _ENV_NAME.fullmatch(rest):
            raise ConfigError(f"{where}: env:{rest!r} is not an environment variable name")
        return SecretReference("env", rest)
    if scheme == "ssm":
        return SecretReference("ssm", rest)
    name, hash_, json_field = rest.rpartition("#") if "#" in rest else (rest, "", "")
    if hash_ and (not name or not json_field):
        raise ConfigError(f"{where}: secretsmanager:<id>#<json-key> needs both parts")
    return SecretReference("secretsmanager", name, json_field or None)


def _aws_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


@dataclass
class SecretResolver:
    """Resolves references with the handler's AWS session (or injected clients); caches each
    reference for its lifetime, so one reference is read once however many channels use it."""

    session: Any = None
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    clients: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _cache: dict[SecretReference, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_context(cls, ctx: Any) -> SecretResolver:
        """From a ``ChannelContext`` (its session, client kwargs and injected clients)."""
        return cls(
            session=ctx.session,
            client_kwargs=dict(ctx.client_kwargs),
            clients=dict(ctx.clients),
        )

    async def resolve(self, reference: str | SecretReference, where: str) -> SecretValue:
        """The secret ``reference`` names; :class:`ConfigError` (naming ``where`` and the
        reference, never a value) when it cannot be read or is empty."""
        ref = (
            reference
            if isinstance(reference, SecretReference)
            else parse_reference(reference, where)
        )
        value = self._cache.get(ref)
        if value is None:
            value = await self._read(ref, where)
            if not value.strip():
                raise ConfigError(f"{where}: {ref} is empty")
            self._cache[ref] = value
        return SecretValue(value, ref)

    async def _read(self, ref: SecretReference, where: str) -> str:
        if ref.scheme == "env":
            value = self.environ.get(ref.name)
            if value is None:
                raise ConfigError(f"{where}: {ref}: the environment variable is not set")
            return value
        service = "ssm" if ref.scheme == "ssm" else "secretsmanager"
        try:
            client = self.clients.get(service)
            if client is not None:
                return await self._call(client, ref, where)
            if self.session is None:
                raise ConfigError(f"{where}: {ref}: no AWS session to read it with")
            async with self.session.create_client(service, **self.client_kwargs) as client:
                return await self._call(client, ref, where)
        except ConfigError:
            raise
        except Exception as exc:  # botocore ClientError, credentials, connection: code only
            raise ConfigError(f"{where}: {ref}: cannot read it: {_aws_code(exc)}") from None

    async def _call(self, client: Any, ref: SecretReference, where: str) -> str:
        if ref.scheme == "ssm":
            answer = await client.get_parameter(Name=ref.name, WithDecryption=True)
            return str(answer["Parameter"]["Value"])
        answer = await client.get_secret_value(SecretId=ref.name)
        text = answer.get("SecretString")
        if text is None:
            raw = answer.get("SecretBinary")
            if raw is None:
                raise ConfigError(f"{where}: {ref}: the secret has no value")
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"{where}: {ref}: the binary secret is not UTF-8") from None
        if ref.field is None:
            return str(text)
        try:
            doc = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise ConfigError(f"{where}: {ref}: the secret is not a JSON object") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: {ref}: the secret is not a JSON object")
        value = doc.get(ref.field)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {ref}: no string field {ref.field!r} in the secret")
        return value


async def resolve_secret(ctx: Any, reference: str, where: str) -> SecretValue:
    """One reference resolved with a ``ChannelContext``'s session and clients."""
    return await SecretResolver.from_context(ctx).resolve(reference, where)
