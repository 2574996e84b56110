"""Config validation: the default serves the demo; every mistake is a clear ConfigError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from notifier.config import ConfigError, load_config, parse_config
from notifier.settings import Settings, SettingsError

MINIMAL = """
[channels.email]
kind = "email"

[[routes]]
event_types = ["profile_view"]
channel = "email"
"""


def test_default_config_routes_the_demo_event_types_on_insert_only() -> None:
    # GIVEN the built-in config WHEN loaded
    config = load_config()
    # THEN each demo type notifies by email on INSERT, with the documented defaults
    for event_type in ("profile_view", "friend_request", "application_update"):
        (route,) = config.lookup[("INSERT", event_type)]
        assert route.channel == "email"
        assert route.recipient == "user.email"
        assert route.dedup_key == "event_id"
        assert config.template_for(route, event_type) == event_type
        assert ("MODIFY", event_type) not in config.lookup
    assert config.delivery.unknown_outcome == "retry"
    assert config.delivery.ttl_seconds > 86_400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace('channel = "email"', 'channel = "sms"'), "'sms' is not defined"),
        (MINIMAL + 'event_names = ["UPSERT"]\n', "event_names"),
        (MINIMAL + '[delivery]\nunknown_outcome = "maybe"\n', "unknown_outcome"),
        (MINIMAL + '[delivery]\nmax_attempts = "3"\n', "max_attempts"),
        (MINIMAL + "[delivery]\nttl_seconds = 60\n", "ttl_seconds"),
        (MINIMAL + 'colour = "blue"\n', "colour"),
        (MINIMAL + '[[routes]]\nevent_types = ["profile_view"]\nchannel = "email"\n', "already"),
        ('[channels.email]\nkind = "email"\n', "routes"),
        (
            "[[routes]]\nevent_types = []\nchannel = \"email\"\n[channels.email]\nkind = 'email'\n",
            "event_types",
        ),
        ('[channels.email]\nfoo = 1\n[[routes]]\nevent_types=["a"]\nchannel="email"\n', "kind"),
    ],
)
def test_invalid_configs_raise_config_error_naming_the_problem(
    write_config: Callable[..., Path], text: str, message: str
) -> None:
    # GIVEN a config file with one mistake
    path = write_config(text=text)
    # WHEN it is loaded THEN a ConfigError (a ValueError) names the source and the key
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unparseable_and_missing_files_are_config_errors(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # GIVEN broken TOML and a path that does not exist WHEN loaded THEN ConfigError
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write_config(text="routes = [[[\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_parse_config_accepts_fan_out_to_two_channels() -> None:
    # GIVEN one event type routed to two channels
    raw = {
        "channels": {"email": {"kind": "email"}, "memo": {"kind": "memory"}},
        "routes": [
            {"event_types": ["friend_request"], "channel": "email"},
            {"event_types": ["friend_request"], "channel": "memo", "template": "t"},
        ],
    }
    # WHEN parsed THEN both routes apply to that event
    config = parse_config(raw)
    assert [r.channel for r in config.lookup[("INSERT", "friend_request")]] == ["email", "memo"]


def test_settings_from_env_reads_names_and_validates_numbers() -> None:
    # GIVEN an environment WHEN read THEN values land, defaults fill the rest
    s = Settings.from_env(
        {
            "NOTIFIER_LEDGER_TABLE": "l",
            "NOTIFIER_MAX_CONCURRENCY": "8",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert (s.ledger_table, s.max_concurrency, s.region) == ("l", 8, "eu-west-1")
    assert s.failure_queue_name == "notifier-failures"
    assert s.sender == "notifications@example.com"
    # AND bad numbers are typed errors
    with pytest.raises(SettingsError):
        Settings.from_env({"NOTIFIER_MAX_CONCURRENCY": "many"})
    with pytest.raises(SettingsError):
        Settings.from_env({"NOTIFIER_MAX_SEND_RATE": "-3"})


def test_importing_the_handler_module_stays_lean() -> None:
    # GIVEN a fresh interpreter WHEN notifier.handler is imported
    import subprocess
    import sys

    code = (
        "import sys, notifier.handler; "
        "print(sorted(m for m in ('aiobotocore', 'botocore', 'msgspec', 'notifier.ddb', "
        "'notifier.templates', 'notifier.pipeline') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # THEN none of the heavy modules were loaded (they load in build_handler)
    assert out.strip() == "[]"


def test_deployment_overrides_replace_the_config_policy() -> None:
    from notifier.handler import with_overrides
    from notifier.settings import Settings

    # GIVEN the built-in config and a stack's environment
    settings = Settings.from_env(
        {
            "NOTIFIER_UNKNOWN_OUTCOME": "Reconcile",
            "NOTIFIER_UNSUBSCRIBE_BASE_URL": "https://abc.lambda-url.eu-west-1.on.aws/",
            "NOTIFIER_PREFERENCES_ENABLED": "true",
        }
    )
    # WHEN applied
    config = with_overrides(load_config(), settings)
    # THEN the policy, the unsubscribe endpoint and the preferences follow the environment
    assert config.delivery.unknown_outcome == "reconcile"
    assert config.unsubscribe.base_url == "https://abc.lambda-url.eu-west-1.on.aws/"
    assert config.preferences.enabled is True
    # AND unusable values are refused with the variable's name
    with pytest.raises(ValueError, match="NOTIFIER_UNKNOWN_OUTCOME"):
        Settings.from_env({"NOTIFIER_UNKNOWN_OUTCOME": "maybe"})
    with pytest.raises(ValueError, match="NOTIFIER_PREFERENCES_ENABLED"):
        Settings.from_env({"NOTIFIER_PREFERENCES_ENABLED": "perhaps"})
    with pytest.raises(ValueError, match="NOTIFIER_UNSUBSCRIBE_BASE_URL"):
        with_overrides(
            load_config(), Settings.from_env({"NOTIFIER_UNSUBSCRIBE_BASE_URL": "http://x/"})
        )
