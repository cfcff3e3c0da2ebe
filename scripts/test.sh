#!/usr/bin/env bash
# The one command that runs every test of crowsnest, on a fresh Debian 12 machine
# or a developer's: installs what the tests need (apt packages), builds the wasm
# plugins from source, starts the test world (dockerd, loopback registries, token
# server), then runs formatting, lint and every test suite.
#
#   scripts/test.sh              everything
#   scripts/test.sh -- ARGS      extra arguments for the host's `cargo test`
#
# Services started here are stopped on exit; a dockerd that was already running
# is used as it is and left alone.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
extra_test_args=()
if [[ "${1:-}" == "--" ]]; then
    shift
    extra_test_args=("$@")
fi

step() { printf '\n==> %s\n' "$*" >&2; }

# --- 1. System packages -------------------------------------------------------
# docker.io: the engine; docker-registry: CNCF distribution 2.8; apache2-utils:
# htpasswd; busybox-static: the FROM-scratch test images; openssl: token-auth
# and test TLS certificates; mosquitto + mosquitto-clients: the real MQTT broker
# and subscriber of the mqtt trigger's tests; python3-aiosmtpd: the real SMTP
# server (STARTTLS/TLS + AUTH) of the email trigger's tests. crowsnest-testkit
# starts those servers on free loopback ports per test and stops them after.
# docker-compose: the Compose project an update must keep owning. podman: the
# Docker-compatible API (`podman system service`) a Podman watcher scans.
# chromium + chromium-driver: the dashboard's browser tests (WebDriver).
# Debian's Rust builds the wasm guests when rustup has no wasm target.
packages=(docker.io docker-registry apache2-utils busybox-static openssl curl ca-certificates
    mosquitto mosquitto-clients python3-aiosmtpd docker-compose podman chromium chromium-driver)
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    packages+=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. Plugins: drift check, then a rebuild from source ----------------------
step "checking that the embedded plugins match their sources"
cargo xtask plugins --check
step "building every wasm plugin from source"
cargo xtask plugins
step "building the example drop-in plugin (examples/custom-registry)"
mkdir -p target/test-env/plugins
cargo xtask plugin examples/custom-registry --out target/test-env/plugins/acme.wasm
export CROWSNEST_TEST_EXAMPLE_PLUGIN="${repo_root}/target/test-env/plugins/acme.wasm"

# --- 3. Test world --------------------------------------------------------------
# The shared engine and the loopback registries are started here. The
# control-plane tests (API, events, triggers) need an engine of their own:
# crowsnest-testkit starts it on a private socket and stops it when the test
# process exits; per-test registries die with their test.
cleanup() {
    local status=$?
    scripts/registries.sh stop >/dev/null 2>&1 || true
    scripts/dockerd.sh stop >/dev/null 2>&1 || true
    exit "${status}"
}
trap cleanup EXIT
step "starting dockerd and the loopback registries"
scripts/dockerd.sh start
scripts/dockerd.sh build-images
scripts/registries.sh start
# shellcheck disable=SC1091
source target/test-env/registries.env

# --- 4. Format, lint, tests ---------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo fmt --manifest-path examples/custom-registry/Cargo.toml -- --check
step "cargo clippy (host workspace)"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo clippy (plugins workspace, native)"
cargo clippy --manifest-path plugins/Cargo.toml --workspace --all-targets -- -D warnings
step "plugin crates' own tests (native): SDK, built-ins, version semantics, golden table, properties"
cargo test --manifest-path plugins/Cargo.toml --workspace
cargo test --manifest-path examples/custom-registry/Cargo.toml
step "building every host test binary once"
cargo test --workspace --no-run

# --- 5. Host tests in two parallel lanes ----------------------------------------
# Most test time is spent waiting on dockerd and registries, not on the CPU, so
# two lanes run side by side. The lanes are split by the engine they use: the
# control-plane tests (files that use crowsnest_testkit::control_plane) share one
# private dockerd that each test process starts and stops, so they run one after
# another in their own lane; every other test binary (shared engine, per-test
# registries, no engine at all) runs in the other lane. Each lane's output goes
# to target/test-lanes/LANE.log and is printed when the lane ends.
lanes_dir="${repo_root}/target/test-lanes"
rm -rf "${lanes_dir}"
mkdir -p "${lanes_dir}"
control_plane_tests=()
world_tests=()
for file in tests/*.rs; do
    name="$(basename "${file}" .rs)"
    if grep -q 'crowsnest_testkit::control_plane' "${file}"; then
        control_plane_tests+=("${name}")
    else
        world_tests+=("${name}")
    fi
done

# run_lane LANE COMMAND...: each COMMAND is one string, run in order; the lane
# records how long each took and which failed, and goes on after a failure.
run_lane() {
    local lane="$1" command started status
    shift
    for command in "$@"; do
        started=${SECONDS}
        printf '\n==> [%s] %s\n' "${lane}" "${command}" >>"${lanes_dir}/${lane}.log"
        status=0
        eval "${command}" >>"${lanes_dir}/${lane}.log" 2>&1 || status=$?
        printf '%5ss  %-8s %s\n' "$((SECONDS - started))" \
            "$([[ ${status} -eq 0 ]] && echo ok || echo FAILED)" "${command}" >>"${lanes_dir}/times"
        [[ ${status} -eq 0 ]] || echo "${command}" >>"${lanes_dir}/failed"
    done
}

test_args=""
if ((${#extra_test_args[@]})); then
    test_args="$(printf ' %q' "${extra_test_args[@]}")"
fi
# Every command selects the whole workspace (`--workspace`, then narrows by
# target): `-p crowsnest` or `--exclude` would resolve features differently
# from the build above and recompile wasmtime and friends inside the lanes.
world_commands=(
    "cargo test --workspace --lib --bins -- ${test_args}"
    "cargo test --workspace --doc"
    # The crates' property harnesses (proptest); CROWSNEST_FUZZ_CASES sets the
    # cases per harness (256 by default; raise it for a long local run).
    "cargo test --workspace --test fuzz -- ${test_args}"
)
for name in "${world_tests[@]}"; do
    world_commands+=("cargo test --workspace --test ${name} -- ${test_args}")
done
control_plane_commands=()
for name in "${control_plane_tests[@]}"; do
    control_plane_commands+=("cargo test --workspace --test ${name} -- ${test_args}")
done

step "host tests: ${#world_tests[@]} test binaries and the unit tests on the shared world, ${#control_plane_tests[@]} control-plane binaries beside them"
run_lane world "${world_commands[@]}" &
world_lane=$!
run_lane control-plane "${control_plane_commands[@]}" &
control_plane_lane=$!
wait "${world_lane}" "${control_plane_lane}"
cat "${lanes_dir}/world.log" "${lanes_dir}/control-plane.log"
step "host test times (seconds, per command)"
sort -rn "${lanes_dir}/times"
# The dashboard's browser test leaves its screenshots in the checkout.
if [[ -d target/screenshots ]]; then
    step "dashboard screenshots (kept in target/screenshots)"
    ls -l target/screenshots
fi
if [[ -s "${lanes_dir}/failed" ]]; then
    step "FAILED:"
    cat "${lanes_dir}/failed" >&2
    exit 1
fi
