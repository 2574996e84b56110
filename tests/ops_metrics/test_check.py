"""``notifier check``: the config and every template in every locale, one line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notifier.cli import main

CONFIG = """
[channels.memo]
kind = "memory"

[[routes]]
event_types = ["greet"]
channel = "memo"
"""


def _set(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    """GIVEN a config routing ``greet`` and a clean template set with a German locale."""
    config = tmp_path / "notifier.toml"
    config.write_text(CONFIG, encoding="utf-8")
    templates = _set(
        tmp_path / "templates",
        {
            "greet/subject.txt": "Hello {{ user.name }}",
            "greet/body.txt": "Hi {{ user.name }}",
            "greet/de/body.txt": "Hallo {{ user.name }}",
            "greet/sample.json": json.dumps({"user": {"name": "Ada"}}),
        },
    )
    return config, templates


def _check(
    config: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str], str]:
    code = main(["check", "--config", str(config), "--templates", str(templates)])
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def test_clean_set_passes(good: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, err, out = _check(*good, capsys)
    assert (code, err) == (0, [])
    assert "2 template renders" in out  # default + de


def test_builtin_config_and_templates_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    monkeypatch.delenv("NOTIFIER_TEMPLATES", raising=False)
    assert main(["check"]) == 0
    assert capsys.readouterr().err == ""


def test_undefined_variable_in_a_locale_is_a_problem_with_file_and_line(
    good: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the German body misspells a variable on line 2 (the default body is fine)
    config, templates = good
    (templates / "greet/de/body.txt").write_text("Hallo\n{{ user.nmae }}\n", encoding="utf-8")
    # WHEN checked THEN exit 1 and exactly one line: file:line: message
    code, err, _ = _check(config, templates, capsys)
    assert code == 1
    assert err == [f"{templates}/greet/de/body.txt:2: " + err[0].split(": ", 1)[1]]
    assert "user.nmae" in err[0]


def test_syntax_error_is_reported_with_its_line(
    good: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, templates = good
    (templates / "greet/body.txt").write_text("ok\n{% if x %}\n", encoding="utf-8")
    code, err, _ = _check(config, templates, capsys)
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith(f"{templates}/greet/body.txt:")
    assert "syntax error" in err[0]


def test_every_problem_is_one_line(
    good: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a route to a template that does not exist, a template without sample data and a
    # sample that lacks a variable
    config, templates = good
    config.write_text(CONFIG.replace('["greet"]', '["greet", "farewell"]'), encoding="utf-8")
    _set(templates, {"nosample/body.txt": "x", "greet/sample.json": "{}"})
    # WHEN checked THEN each problem is its own line, naming file or key
    code, err, _ = _check(config, templates, capsys)
    assert code == 1
    assert len(err) == 4, err
    assert any("routes[0]: template 'farewell'" in line for line in err)
    assert any(line.startswith(f"{templates}/nosample/sample.json: missing") for line in err)
    assert sum("undefined value" in line for line in err) == 2  # default and de


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = \n", ":1: invalid TOML"),
        ("[delivery]\nmax_attempts = 'x'\n[channels.m]\nkind='memory'\n", "delivery.max_attempts"),
        ("colour = 1\n", "unknown key `colour`"),
    ],
)
def test_config_problems(
    good: tuple[Path, Path], capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    config, templates = good
    config.write_text(text, encoding="utf-8")
    code, err, _ = _check(config, templates, capsys)
    assert code == 1
    assert err
    assert err[0].startswith(str(config))
    assert expected in err[0]


def test_config_and_templates_from_the_environment(
    good: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN NOTIFIER_TEMPLATES naming a set with a broken template
    config, templates = good
    (templates / "greet/body.txt").write_text("{{ nope }}", encoding="utf-8")
    monkeypatch.setenv("NOTIFIER_CONFIG", str(config))
    monkeypatch.setenv("NOTIFIER_TEMPLATES", str(templates))
    # WHEN checked without flags THEN that set is the one checked
    assert main(["check"]) == 1
    assert "greet/body.txt:1:" in capsys.readouterr().err
