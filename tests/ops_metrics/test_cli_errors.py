"""Every user error of the ``notifier`` command is one line on stderr, exit 2, before any work.

GIVEN a bad flag, file or environment variable WHEN the command runs THEN exit status 2, one
line on stderr naming the flag/file/key, no traceback, and (demo) no moto started.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

import notifier
from notifier.cli import main


@pytest.fixture(autouse=True)
def _no_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start the embedded AWS fails the test: errors come first."""

    class Forbidden:
        def __init__(self, *a: object, **k: object) -> None:
            raise AssertionError("moto started before the user error was reported")

    monkeypatch.setattr("notifier.local.moto_server.MotoServer", Forbidden)
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    monkeypatch.delenv("NOTIFIER_TEMPLATES", raising=False)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    return code, err


def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["demo", "--events", "abc"], ["--events", "a whole number >= 0", "'abc'"]),
        (["demo", "--events", "-3"], ["--events", "a whole number >= 0"]),
        (["demo", "--batch-size", "20000"], ["--batch-size", "10,000"]),
        (["demo", "--batch-size", "0"], ["--batch-size"]),
        (["demo", "--error-rate", "2"], ["--error-rate", "probability"]),
        (["demo", "--throttle-rate", "-0.1"], ["--throttle-rate", "probability"]),
        (["demo", "--lost-rate", "nan"], ["--lost-rate", "probability"]),
        (["demo", "--batching-window", "301"], ["--batching-window", "300"]),
        (["demo", "--max-record-age", "30"], ["--max-record-age", "60"]),
        (["demo", "--send-rate", "0"], ["--send-rate", "> 0"]),
        (["demo", "--no-such-flag"], ["--no-such-flag"]),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_bad_flags_fail_in_one_line(
    argv: list[str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(argv, capsys)
    _assert_one_line_error(code, err, *needles)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (None, ["NOTIFIER_CONFIG", "missing.toml", "cannot read"]),
        ("x = \n", ["bad.toml", "invalid TOML", "line 1"]),
        ("[delivery]\nmax_attempts = 'three'\n", ["bad.toml", "delivery.max_attempts"]),
        ("colour = 'blue'\n", ["bad.toml", "unknown key `colour`"]),
    ],
)
def test_demo_reports_a_bad_config_before_moto_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    needles: list[str],
) -> None:
    # GIVEN NOTIFIER_CONFIG naming a missing or broken file
    path = tmp_path / ("missing.toml" if text is None else "bad.toml")
    if text is not None:
        path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("NOTIFIER_CONFIG", str(path))
    # WHEN the demo runs THEN one line names the file and the key, and moto never starts
    code, err = _run(["demo", "--events", "1"], capsys)
    _assert_one_line_error(code, err, *needles)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFIER_MAX_CONCURRENCY", "many"),
        ("NOTIFIER_METRICS", "statsd"),
        ("NOTIFIER_TEMPLATES", "/no/such/folder"),
    ],
)
def test_demo_reports_a_bad_environment_variable_before_moto_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    code, err = _run(["demo", "--events", "1"], capsys)
    _assert_one_line_error(code, err, name)


def test_demo_reports_a_template_syntax_error_before_moto_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN NOTIFIER_TEMPLATES with a template that does not parse
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "body.txt").write_text("{% if x %}\nno end\n", encoding="utf-8")
    monkeypatch.setenv("NOTIFIER_TEMPLATES", str(tmp_path))
    # WHEN the demo runs THEN one line names the file
    code, err = _run(["demo", "--events", "1"], capsys)
    _assert_one_line_error(code, err, "NOTIFIER_TEMPLATES", "t/body.txt", "syntax error")


def test_preview_unknown_template_lists_the_templates(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["preview", "no_such_template"], capsys)
    _assert_one_line_error(code, err, "no_such_template", "templates: application_update")
    assert "sample.json" not in err


def test_preview_unknown_locale_lists_the_locales(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.html"
    code, err = _run(["preview", "application_update", "--locale", "xx", "--out", str(out)], capsys)
    _assert_one_line_error(code, err, "--locale xx", "locales: de")
    assert not out.exists()


def test_preview_regional_locale_uses_its_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a template with a "de" folder WHEN previewed as de-AT THEN it renders German
    out = tmp_path / "p.html"
    code, _ = _run(
        ["preview", "application_update", "--locale", "de_at", "--out", str(out)], capsys
    )
    assert code == 0
    assert "Vorstellungsgespr" in out.read_text(encoding="utf-8")


def test_preview_out_in_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nope" / "p.html"
    code, err = _run(["preview", "application_update", "--out", str(out)], capsys)
    _assert_one_line_error(code, err, "--out", "does not exist")


def test_preview_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["preview", "application_update", "--data", str(tmp_path / "x.json")]
    code, err = _run([*argv, "--out", str(tmp_path / "p.html")], capsys)
    _assert_one_line_error(code, err, "--data", "x.json")


def test_preview_template_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a template set with a syntax error on line 2
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "body.txt").write_text("ok\n{{ x \n", encoding="utf-8")
    argv = ["preview", "t", "--templates", str(tmp_path), "--out", str(tmp_path / "p.html")]
    code, err = _run(argv, capsys)
    _assert_one_line_error(code, err, "t/body.txt", "line 2")


def test_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN --help is asked THEN it describes the tool, not the dispatcher's code
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "DynamoDB" in out
    assert "dispatcher" not in out
    assert "--version" in out
    assert "check" in out


def test_demo_flags_all_have_help_and_no_none_default() -> None:
    from notifier.local import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or action.dest == "help":
            continue
        assert action.help, action.option_strings
    text = parser.format_help()
    assert "(default: None)" not in text
    assert "(default: when stderr is a terminal)" in " ".join(text.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"notifier {notifier.__version__}"


def test_progress_bar_shows_rate_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.local import demo

    # GIVEN a progress bar on a fake terminal and a clock we move by hand
    now = [100.0]
    monkeypatch.setattr(demo.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = demo._Progress(stream, enabled=True)
    bar.show("write", 0, 1000)
    # WHEN 250 of 1000 are done after 5 s
    now[0] += 5.0
    bar.show("write", 250, 1000)
    # THEN the line shows 50/s and 15 s left
    assert "50/s, 15s left" in stream.getvalue().rsplit("\r", 1)[-1]


def test_rate_and_eta_formats() -> None:
    from notifier.local.demo import rate_and_eta

    assert rate_and_eta(0, 10, 1.0) == ""
    assert rate_and_eta(10, 0, 2.0) == "5/s "
    assert rate_and_eta(1, 600, 1.0) == "1/s, 10m00s left "


def test_preview_invalid_json_data_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a data file with a JSON error on line 2
    data = tmp_path / "d.json"
    data.write_text('{"user":\n  {"name": }\n}', encoding="utf-8")
    argv = ["preview", "application_update", "--data", str(data)]
    # WHEN previewed THEN one line: file:line
    code, err = _run([*argv, "--out", str(tmp_path / "p.html")], capsys)
    _assert_one_line_error(code, err, f"{data}:2:", "invalid JSON")
