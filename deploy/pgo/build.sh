#!/usr/bin/env bash
# Profile-guided build of the extension (as pydantic-core builds its wheels):
#   0. a probe: a one-line program built instrumented by rustc, run, and its raw profile merged
#      with each llvm-profdata found; none can read it -> no instrumented build is started;
#   1. an instrumented release build (-Cprofile-generate), in its own target dir, unpacked;
#   2. deploy/pgo/train.py runs the hot paths on it and leaves raw profiles;
#   3. llvm-profdata merges them (the first candidate that reads this rustc's format);
#   4. the maturin command given runs with -Cprofile-use.
#
# usage: deploy/pgo/build.sh PYTHON MATURIN_ARGS...
#   deploy/pgo/build.sh .venv/bin/python develop --release --extras demo,test,lint
#   deploy/pgo/build.sh python3 build --release --locked --out dist
# PYTHON runs maturin (python -m maturin) and the training. The instrumented build is for the
# build host (training runs it); the final `maturin MATURIN_ARGS...` may cross-compile
# (--target, --zig), with the limits noted at step 1.
#
# PGO=auto (default): PGO when a usable llvm-profdata is found (and the instrumented build
#                     and training succeed), else a plain build and a warning saying so;
# PGO=1: fail without one;  PGO=0: plain `maturin MATURIN_ARGS...`.
# WHEEL_OUT: also pack the extension just built into a wheel in this (emptied) directory: the
# same flags, so cargo reuses the build (the Makefile's, for .ci/test-pythons).
# LLVM_PROFDATA: the tool to use. Otherwise tried in order: rustup's llvm-tools component,
# llvm-profdata-22 .. -19, llvm-profdata (Debian bookworm: `apt-get install llvm-19` reads the
# raw profiles of rustc 1.95's LLVM 22; LLVM 14-16 cannot).
set -euo pipefail

py=${1:?usage: deploy/pgo/build.sh PYTHON MATURIN_ARGS...}
shift
[[ $py == */* && $py != /* ]] && py=$PWD/$py # a relative path, before the cd below
mode=${PGO:-auto}
cd "$(dirname "$0")/../.."
root=$(pwd)
maturin() { "$py" -m maturin "$@"; }
# The final build, then the wheel of it when WHEEL_OUT asks (RUSTFLAGS as exported). Every
# step returns on failure: `plain` runs this where errexit is off.
final() {
    maturin "$@" || return
    [[ -n ${WHEEL_OUT:-} ]] || return 0
    rm -rf "$WHEEL_OUT" || return
    maturin build --release --quiet --out "$WHEEL_OUT"
}

if [[ $mode == 0 ]]; then
    final "$@"
    exit
fi

target=${CARGO_TARGET_DIR:-$root/target}
work=$target/pgo # profiles and the unpacked instrumented build
rm -rf "$work"
mkdir -p "$work/raw"

candidates=()
[[ -n ${LLVM_PROFDATA:-} ]] && candidates+=("$LLVM_PROFDATA")
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
candidates+=("$sysroot/lib/rustlib/$host/bin/llvm-profdata")
for v in 22 21 20 19; do candidates+=("llvm-profdata-$v"); done
candidates+=(llvm-profdata)
found=()
for c in "${candidates[@]}"; do
    command -v "$c" >/dev/null 2>&1 && found+=("$c")
done

plain() {
    local why=$1
    shift
    if [[ $mode == 1 ]]; then
        echo "pgo: $why (PGO=1); install one: apt-get install llvm-19, or rustup component add llvm-tools" >&2
        exit 1
    fi
    echo "pgo: WARNING: $why; building WITHOUT profile-guided optimization (slower extension;" \
        "apt-get install llvm-19 or rustup component add llvm-tools to enable it)" >&2
    final "$@"
    exit
}
[[ ${#found[@]} -gt 0 ]] || plain "no llvm-profdata found" "$@"

# Before ~70 s of instrumented build: can this rustc build an instrumented program at all,
# and can one of the llvm-profdata found read what it writes? (An llvm-profdata older than
# rustc's LLVM cannot read its raw profiles.) A one-line program answers in about a second.
probe=$work/probe
mkdir -p "$probe/raw"
printf 'fn main() {}\n' >"$probe/main.rs"
if ! rustc -Cprofile-generate="$probe/raw" -o "$probe/main" "$probe/main.rs" 2>"$probe/rustc.log" ||
    ! LLVM_PROFILE_FILE="$probe/raw/probe-%p.profraw" "$probe/main"; then
    plain "this rustc cannot build an instrumented program (no profiler runtime? $probe/rustc.log)" "$@"
fi
usable=()
for tool in "${found[@]}"; do
    "$tool" merge -o "$probe/probe.profdata" "$probe"/raw/*.profraw 2>/dev/null && usable+=("$tool")
done
[[ ${#usable[@]} -gt 0 ]] ||
    plain "no llvm-profdata here reads rustc's raw profiles (tried: ${found[*]})" "$@"
found=("${usable[@]}")
echo "pgo: 0/4 ${found[0]} reads this rustc's profiles" >&2

# The instrumented build is a plain host build. A final build with an explicit --target or
# --zig (the Dockerfile's) names ~1,000 generic instantiations differently, and LLVM finds
# no profile for them (non-generic code keeps its profile). An instrumented build cannot be
# configured like it: cargo-zigbuild cannot link one (rust-cross/cargo-zigbuild#315).
# (errexit is off inside a function called before ||: every step returns on failure)
instrument_and_train() {
    echo "pgo: 1/4 instrumented build" >&2
    RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/raw" CARGO_TARGET_DIR=$target/pgo-instrumented \
        maturin build --release --quiet --out "$work/wheel" || return 1
    "$py" -m zipfile -e "$work"/wheel/*.whl "$work/pkg" || return 1
    rm -rf "$work/raw" && mkdir -p "$work/raw" || return 1 # build scripts ran instrumented too

    echo "pgo: 2/4 training run" >&2
    LLVM_PROFILE_FILE="$work/raw/train-%p-%m.profraw" NOTIFIER_PGO_PACKAGE="$work/pkg" \
        PYTHONPATH="$work/pkg" PYTHONSAFEPATH=1 "$py" "$root/deploy/pgo/train.py"
}
# (a toolchain without the profiler runtime, as some distributions' rustc, fails here)
instrument_and_train || plain "the instrumented build or its training run failed (above)" "$@"

merged=""
for tool in "${found[@]}"; do
    if "$tool" merge -o "$work/merged.profdata" "$work"/raw/*.profraw 2>"$work/merge.log"; then
        merged=$tool
        break
    fi
done
[[ -n $merged ]] || plain "no llvm-profdata here reads rustc's raw profiles (tried: ${found[*]})" "$@"
echo "pgo: 3/4 merged with $merged" >&2

echo "pgo: 4/4 optimizing build: maturin $*" >&2
export RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$work/merged.profdata"
final "$@"
