"""Secret references (env, SSM Parameter Store, Secrets Manager on moto over HTTP): resolved
once, and never shown in an error."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
from aiobotocore.session import get_session

from notifier.config import ConfigError
from notifier.secrets import SecretReference, SecretResolver, SecretValue, parse_reference

VALUE = "whsec_c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1sZWFr"


def _resolver(aws: str) -> SecretResolver:
    return SecretResolver(
        session=get_session(),
        client_kwargs={"region_name": "us-east-1", "endpoint_url": aws},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env:HOOK_SECRET", SecretReference("env", "HOOK_SECRET")),
        ("ssm:/notifier/hooks/secret", SecretReference("ssm", "/notifier/hooks/secret")),
        ("secretsmanager:notifier/hooks", SecretReference("secretsmanager", "notifier/hooks")),
        (
            "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:hooks-AbCdEf#key",
            SecretReference(
                "secretsmanager",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:hooks-AbCdEf",
                "key",
            ),
        ),
    ],
)
def test_references_parse(text: str, expected: SecretReference) -> None:
    assert parse_reference(text, "channels.hooks.secret") == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", [VALUE, "vault:x", "env:", "env:1BAD", "secretsmanager:#k", "secretsmanager:id#", 7]
)
def test_a_non_reference_is_refused_without_echoing_it(text: object) -> None:
    # GIVEN a literal secret (or junk) where a reference belongs
    with pytest.raises(ConfigError, match=r"^channels\.hooks\.secret: ") as info:
        parse_reference(text, "channels.hooks.secret")
    # THEN the error never repeats the pasted secret
    assert VALUE not in str(info.value)


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", VALUE)
    value = asyncio.run(SecretResolver().resolve("env:HOOK_SECRET", "channels.hooks.secret"))
    assert value.reveal() == VALUE
    # AND the value object never shows it
    assert VALUE not in repr(value)
    assert VALUE not in str(value)
    assert VALUE not in f"{value}"


def test_unset_or_empty_env_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="env:HOOK_SECRET: the environment variable is not set"):
        asyncio.run(SecretResolver().resolve("env:HOOK_SECRET", "channels.hooks.secret"))
    monkeypatch.setenv("HOOK_SECRET", "  ")
    with pytest.raises(ConfigError, match="env:HOOK_SECRET is empty"):
        asyncio.run(SecretResolver().resolve("env:HOOK_SECRET", "channels.hooks.secret"))


def test_ssm_secure_string_is_decrypted(aws: str) -> None:
    # GIVEN a SecureString parameter in Parameter Store
    boto3.client("ssm").put_parameter(Name="/notifier/hook", Value=VALUE, Type="SecureString")
    # WHEN resolved THEN its decrypted value
    value = asyncio.run(_resolver(aws).resolve("ssm:/notifier/hook", "channels.hooks.secret"))
    assert value.reveal() == VALUE


def test_a_reference_is_read_once(aws: str) -> None:
    # GIVEN a parameter resolved once
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/notifier/hook", Value=VALUE, Type="SecureString")
    resolver = _resolver(aws)
    asyncio.run(resolver.resolve("ssm:/notifier/hook", "channels.a.secret"))
    # WHEN it changes and is resolved again by the same resolver
    ssm.put_parameter(
        Name="/notifier/hook", Value="whsec_other", Type="SecureString", Overwrite=True
    )
    again = asyncio.run(resolver.resolve("ssm:/notifier/hook", "channels.b.secret"))
    # THEN the first read stands (one read per build, not per use)
    assert again.reveal() == VALUE


def test_missing_ssm_parameter_names_the_reference_and_code(aws: str) -> None:
    with pytest.raises(ConfigError) as info:
        asyncio.run(_resolver(aws).resolve("ssm:/notifier/nope", "channels.hooks.secret"))
    assert str(info.value) == (
        "channels.hooks.secret: ssm:/notifier/nope: cannot read it: ParameterNotFound"
    )


def test_secretsmanager_string_and_json_field(aws: str) -> None:
    # GIVEN a plain secret and a JSON one
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="notifier/plain", SecretString=VALUE)
    sm.create_secret(
        Name="notifier/json", SecretString=json.dumps({"webhook": VALUE, "other": "x"})
    )
    resolver = _resolver(aws)
    # THEN the plain one whole, the JSON one's field
    plain = asyncio.run(resolver.resolve("secretsmanager:notifier/plain", "k"))
    field = asyncio.run(resolver.resolve("secretsmanager:notifier/json#webhook", "k"))
    assert plain.reveal() == field.reveal() == VALUE


def test_secretsmanager_binary_secret(aws: str) -> None:
    boto3.client("secretsmanager").create_secret(Name="notifier/bin", SecretBinary=VALUE.encode())
    value = asyncio.run(_resolver(aws).resolve("secretsmanager:notifier/bin", "k"))
    assert value.reveal() == VALUE


@pytest.mark.parametrize(
    ("secret", "reference", "message"),
    [
        (json.dumps({"webhook": VALUE}), "notifier/s#missing", "no string field 'missing'"),
        (json.dumps({"webhook": 5, "leak": VALUE}), "notifier/s#webhook", "no string field"),
        (VALUE, "notifier/s#webhook", "the secret is not a JSON object"),
        (json.dumps([VALUE]), "notifier/s#webhook", "the secret is not a JSON object"),
    ],
)
def test_secretsmanager_field_errors_never_show_the_secret(
    aws: str, secret: str, reference: str, message: str
) -> None:
    boto3.client("secretsmanager").create_secret(Name="notifier/s", SecretString=secret)
    with pytest.raises(ConfigError, match=message) as info:
        asyncio.run(_resolver(aws).resolve(f"secretsmanager:{reference}", "channels.hooks.secret"))
    assert VALUE not in str(info.value)
    assert info.value.__cause__ is None  # no chained exception carrying the text either


def test_missing_secretsmanager_secret(aws: str) -> None:
    with pytest.raises(
        ConfigError, match="secretsmanager:notifier/gone: cannot read it: ResourceNotFoundException"
    ):
        asyncio.run(_resolver(aws).resolve("secretsmanager:notifier/gone", "channels.hooks.secret"))


def test_injected_clients_are_used(aws: str) -> None:
    # GIVEN a resolver with no session, only injected clients (as the handler injects them)
    boto3.client("ssm").put_parameter(Name="/p", Value=VALUE, Type="SecureString")
    boto3.client("secretsmanager").create_secret(Name="s", SecretString=VALUE)

    async def resolve_both() -> tuple[str, str]:
        session = get_session()
        kwargs = {"region_name": "us-east-1", "endpoint_url": aws}
        async with (
            session.create_client("ssm", **kwargs) as ssm,
            session.create_client("secretsmanager", **kwargs) as sm,
        ):
            resolver = SecretResolver(clients={"ssm": ssm, "secretsmanager": sm})
            a = await resolver.resolve("ssm:/p", "k")
            b = await resolver.resolve("secretsmanager:s", "k")
            return a.reveal(), b.reveal()

    # THEN both read through them
    assert asyncio.run(resolve_both()) == (VALUE, VALUE)


def test_no_session_and_no_client_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ssm:/p: no AWS session"):
        asyncio.run(SecretResolver().resolve("ssm:/p", "channels.hooks.secret"))


def test_secret_value_repr_names_the_reference_only() -> None:
    value = SecretValue(VALUE, SecretReference("env", "X"))
    assert repr(value) == "SecretValue(env:X, <redacted>)"
