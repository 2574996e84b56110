"""deploy/pgo: the profile-guided build's choices and its training run.

The build script is run for real up to the point where it would start compiling: on a PATH
that holds only what it needs, a stand-in ``rustc`` (its sysroot has no llvm-tools) and a
stand-in Python that records the maturin command it was asked to run. The full PGO cycle
(instrumented build, training, merge, optimizing build) runs in every ``make setup``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from notifier import _core

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "pgo" / "build.sh"
TRAIN = REPO / "deploy" / "pgo" / "train.py"


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """GIVEN a PATH with bash and coreutils, a rustc without llvm-tools, no llvm-profdata,
    and a Python that writes the arguments it was started with to ``calls``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "chmod", "dirname", "mkdir", "rm", "sed"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    sysroot = tmp_path / "sysroot"
    sysroot.mkdir()
    rustc = bin_dir / "rustc"
    # (builds the probe, `rustc -Cprofile-generate=DIR -o OUT SRC`, as a program that leaves a
    # raw profile where LLVM_PROFILE_FILE says; fails to when FAIL_PROBE is set)
    rustc.write_text(
        "#!/usr/bin/env bash\n"
        f'[[ $1 == --print ]] && echo "{sysroot}" && exit 0\n'
        "if [[ $1 == -Cprofile-generate=* ]]; then\n"
        "  [[ -n ${FAIL_PROBE:-} ]] && exit 1\n"
        '  printf \'#!/usr/bin/env bash\\necho raw > "${LLVM_PROFILE_FILE//%%p/1}"\\n\' > "$3"\n'
        '  chmod +x "$3"; exit 0\n'
        "fi\n"
        'echo "host: x86_64-unknown-linux-gnu"\n'
    )
    calls = tmp_path / "calls"
    python = bin_dir / "python"
    # (fails the instrumented build, `maturin build ... --quiet`, when FAIL_INSTRUMENTED is set,
    # and the final `maturin develop` when FAIL_FINAL is)
    python.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> "{calls}"\n'
        "[[ -n ${FAIL_INSTRUMENTED:-} && $* == *--quiet* ]] && exit 1\n"
        "[[ -n ${FAIL_FINAL:-} && $* == *develop* ]] && exit 3\n"
        "exit 0\n"
    )
    for script in (rustc, python):
        script.chmod(0o755)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "CARGO_TARGET_DIR": str(tmp_path / "target"),
    }
    return env, calls


def _build(env: dict[str, str], mode: str | None) -> subprocess.CompletedProcess[str]:
    if mode is not None:
        env = {**env, "PGO": mode}
    return subprocess.run(
        [str(BUILD), "python", "develop", "--release"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_pgo_0_runs_the_plain_maturin_command(sandbox: tuple[dict[str, str], Path]) -> None:
    env, calls = sandbox
    # WHEN the build runs with PGO=0
    result = _build(env, "0")
    # THEN it runs exactly the maturin command it was given, and nothing else
    assert result.returncode == 0, result.stderr
    assert calls.read_text() == "-m maturin develop --release\n"
    assert result.stderr == ""


@pytest.mark.parametrize("mode", ["0", None])
def test_wheel_out_packs_the_final_build_into_an_emptied_directory(
    sandbox: tuple[dict[str, str], Path], mode: str | None
) -> None:
    env, calls = sandbox
    # GIVEN a wheel directory holding a wheel of an earlier build
    wheels = Path(env["HOME"]) / "wheels"
    wheels.mkdir()
    (wheels / "notifier-0.0.1-cp311-abi3-old.whl").write_text("stale")
    # WHEN the build runs with WHEEL_OUT, plain (PGO=0) or falling back to plain (auto)
    result = _build({**env, "WHEEL_OUT": str(wheels)}, mode)
    # THEN the final command runs, then one `maturin build` of it into the emptied directory
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "-m maturin develop --release",
        f"-m maturin build --release --quiet --out {wheels}",
    ]
    assert not wheels.exists()  # emptied; the fake maturin packs nothing


@pytest.mark.parametrize("mode", ["0", None])
def test_a_failed_final_build_fails_the_script_and_packs_nothing(
    sandbox: tuple[dict[str, str], Path], mode: str | None
) -> None:
    env, calls = sandbox
    # WHEN the final maturin command fails, on the plain path and on auto's fallback
    result = _build({**env, "WHEEL_OUT": str(Path(env["HOME"]) / "w"), "FAIL_FINAL": "1"}, mode)
    # THEN the script fails with its status, and no wheel is packed
    assert result.returncode == 3, result.stderr
    assert calls.read_text().splitlines() == ["-m maturin develop --release"]


def test_auto_without_llvm_profdata_warns_and_builds_plain(
    sandbox: tuple[dict[str, str], Path],
) -> None:
    env, calls = sandbox
    # WHEN the build runs with the default mode and no llvm-profdata anywhere
    result = _build(env, None)
    # THEN it says so and falls back to the plain command (no instrumented build)
    assert result.returncode == 0, result.stderr
    assert "WARNING: no llvm-profdata found" in result.stderr
    assert "WITHOUT profile-guided optimization" in result.stderr
    assert calls.read_text() == "-m maturin develop --release\n"


def test_pgo_1_without_llvm_profdata_fails(sandbox: tuple[dict[str, str], Path]) -> None:
    env, calls = sandbox
    # WHEN the build requires PGO and no llvm-profdata is found
    result = _build(env, "1")
    # THEN it fails, naming how to get one, and builds nothing
    assert result.returncode == 1
    assert "no llvm-profdata found (PGO=1)" in result.stderr
    assert "llvm-tools" in result.stderr
    assert not calls.exists()


@pytest.mark.parametrize("mode", ["auto", "1"])
def test_a_failed_instrumented_build_falls_back_or_fails(
    sandbox: tuple[dict[str, str], Path], mode: str
) -> None:
    env, calls = sandbox
    # GIVEN an llvm-profdata, but an instrumented build that fails (a toolchain without the
    # profiler runtime)
    tool = Path(env["PATH"]) / "llvm-profdata-19"
    tool.write_text("#!/usr/bin/env bash\nexit 0\n")
    tool.chmod(0o755)
    env = {**env, "FAIL_INSTRUMENTED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    # WHEN the build runs
    result = _build(env, mode)
    # THEN auto says so and builds plain; PGO=1 fails; neither trains on a missing build
    attempts = calls.read_text().splitlines()
    wheel_dir = Path(env["CARGO_TARGET_DIR"]) / "pgo" / "wheel"
    assert attempts[0] == f"-m maturin build --release --quiet --out {wheel_dir}"
    assert "instrumented build or its training run failed" in result.stderr
    assert "pgo: 2/4 training run" not in result.stderr
    if mode == "auto":
        assert result.returncode == 0, result.stderr
        assert attempts[1:] == ["-m maturin develop --release"]
    else:
        assert result.returncode == 1
        assert attempts[1:] == []


def _train(package: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The training run, told to expect the extension under ``package``."""
    return subprocess.run(
        [sys.executable, str(TRAIN)],
        env={**os.environ, "NOTIFIER_PGO_PACKAGE": str(package)},
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_training_run_covers_the_extension(tmp_path: Path) -> None:
    # GIVEN the installed extension (release build: editable under python/, or from a
    # wheel in site-packages) and only the standard library besides
    package = Path(_core.__file__).resolve().parents[1]
    # WHEN the training run runs against it
    result = _train(package, tmp_path)
    # THEN it completes every path (decoding, serializing, every render entry point)
    assert result.returncode == 0, result.stderr
    assert "pgo: trained on 9300 records x every path" in result.stdout


def test_training_run_refuses_another_build(tmp_path: Path) -> None:
    # GIVEN a package directory that is not where the extension was imported from
    # WHEN the training run starts
    result = _train(tmp_path, tmp_path)
    # THEN it stops before training the wrong binary
    assert result.returncode != 0
    assert "expected the build under" in result.stderr


def _profdata(env: dict[str, str], name: str, reads: bool) -> None:
    """An llvm-profdata stand-in that can (exit 0) or cannot (exit 1, as LLVM 14-16 on rustc's
    raw profiles) merge what it is given."""
    tool = Path(env["PATH"]) / name
    tool.write_text(
        "#!/usr/bin/env bash\n"
        + (
            "exit 0\n"
            if reads
            else 'echo "unsupported instrumentation profile format" >&2; exit 1\n'
        )
    )
    tool.chmod(0o755)


@pytest.mark.parametrize("mode", ["auto", "1"])
def test_an_llvm_profdata_that_cannot_read_rustc_profiles_stops_before_building(
    sandbox: tuple[dict[str, str], Path], mode: str
) -> None:
    env, calls = sandbox
    # GIVEN an llvm-profdata too old for this rustc's raw profiles
    _profdata(env, "llvm-profdata", reads=False)
    # WHEN the build runs
    result = _build(env, mode)
    # THEN the probe finds out first: no instrumented build is started
    attempts = calls.read_text().splitlines() if calls.exists() else []
    assert not any("--quiet" in a for a in attempts), attempts
    assert "no llvm-profdata here reads rustc's raw profiles (tried: llvm-profdata)" in (
        result.stderr
    )
    assert "pgo: 1/4 instrumented build" not in result.stderr
    # AND auto builds plain at once, PGO=1 fails without building anything
    if mode == "auto":
        assert result.returncode == 0, result.stderr
        assert attempts == ["-m maturin develop --release"]
    else:
        assert result.returncode == 1
        assert attempts == []


def test_a_rustc_that_cannot_build_instrumented_programs_stops_before_building(
    sandbox: tuple[dict[str, str], Path],
) -> None:
    env, calls = sandbox
    # GIVEN a working llvm-profdata but a rustc without the profiler runtime
    _profdata(env, "llvm-profdata-19", reads=True)
    # WHEN the build runs with the default mode
    result = _build({**env, "FAIL_PROBE": "1"}, None)
    # THEN the probe says so and the plain build runs, without an instrumented one
    assert result.returncode == 0, result.stderr
    assert "cannot build an instrumented program" in result.stderr
    assert calls.read_text().splitlines() == ["-m maturin develop --release"]


def test_the_probe_picks_the_llvm_profdata_that_reads_the_profiles(
    sandbox: tuple[dict[str, str], Path],
) -> None:
    env, calls = sandbox
    # GIVEN a newer-named llvm-profdata that cannot read rustc's profiles and one that can
    _profdata(env, "llvm-profdata-22", reads=False)
    _profdata(env, "llvm-profdata-19", reads=True)
    # WHEN the build runs (its instrumented build stopped short, to keep the test offline)
    result = _build({**env, "FAIL_INSTRUMENTED": "1"}, "auto")
    # THEN the one that reads them is chosen, and only then is the instrumented build tried
    assert "pgo: 0/4 llvm-profdata-19 reads this rustc's profiles" in result.stderr
    wheel_dir = Path(env["CARGO_TARGET_DIR"]) / "pgo" / "wheel"
    attempts = calls.read_text().splitlines()
    assert attempts[0] == f"-m maturin build --release --quiet --out {wheel_dir}"
