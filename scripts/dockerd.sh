#!/usr/bin/env bash
# Test-world Docker engine for crowsnest.
#
#   scripts/dockerd.sh start         start dockerd unless one already answers on the socket
#   scripts/dockerd.sh stop          stop the dockerd this script started (never a foreign one)
#   scripts/dockerd.sh status        exit 0 when a daemon answers on the socket
#   scripts/dockerd.sh build-images  build the local FROM-scratch test images
#
# Installs nothing: docker.io and busybox-static come from the CI's apt step.
# The daemon runs without a bridge network (`--bridge=none`, no iptables), so test
# containers must use `--network none`. Nothing is ever pulled from the internet.
#
# Environment:
#   CROWSNEST_DOCKER_SOCKET     socket to serve/probe (default /var/run/docker.sock)
#   CROWSNEST_DOCKERD_STATE     state dir (default <repo>/target/test-env/dockerd)
#   CROWSNEST_DOCKERD_STORAGE   storage driver override (e.g. vfs) when overlay2 fails
#   CROWSNEST_DOCKERD_TIMEOUT   seconds to wait for `docker info` (default 60)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
test_env="${repo_root}/target/test-env"
state_dir="${CROWSNEST_DOCKERD_STATE:-${test_env}/dockerd}"
socket="${CROWSNEST_DOCKER_SOCKET:-/var/run/docker.sock}"
log_file="${test_env}/dockerd.log"
pid_file="${state_dir}/dockerd.pid"
wait_seconds="${CROWSNEST_DOCKERD_TIMEOUT:-60}"

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

docker_cli() { docker --host "unix://${socket}" "$@"; }

daemon_answers() { docker_cli info >/dev/null 2>&1; }

# True when the process exists and is not a zombie (a killed daemon whose parent
# never reaps it keeps its pid and comm, so kill -0 alone would say "alive").
process_alive() {
    local pid="$1" state
    kill -0 "${pid}" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null || true)"
    [[ -n "${state}" && "${state}" != "Z" && "${state}" != "X" ]]
}

# Prints the pid recorded in our pid file when that process is alive and is a dockerd.
our_live_pid() {
    [[ -f "${pid_file}" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"${pid_file}")"
    [[ -n "${pid}" ]] || return 1
    process_alive "${pid}" || return 1
    [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == "dockerd" ]] || return 1
    printf '%s\n' "${pid}"
}

wait_until_answers() {
    local pid="$1" deadline=$((SECONDS + wait_seconds))
    until daemon_answers; do
        if [[ -n "${pid}" ]] && ! process_alive "${pid}"; then
            tail -n 30 "${log_file}" >&2 || true
            die "dockerd (pid ${pid}) exited during start-up; see ${log_file}"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "${log_file}" >&2 || true
            die "dockerd did not answer on ${socket} within ${wait_seconds}s; see ${log_file}"
        fi
        sleep 0.5
    done
}

cmd_start() {
    if daemon_answers; then
        log "a Docker daemon already answers on ${socket}; using it"
        return 0
    fi
    command -v dockerd >/dev/null || die "dockerd not found (apt-get install -y docker.io)"
    mkdir -p "${state_dir}/data" "${state_dir}/exec" "$(dirname "${socket}")" "${test_env}"

    local pid
    if pid="$(our_live_pid)"; then
        log "dockerd (pid ${pid}) from a previous start is still starting; waiting for it"
        wait_until_answers "${pid}"
        return 0
    fi
    if [[ -f "${pid_file}" ]]; then
        log "removing stale pid file ${pid_file}"
        rm -f "${pid_file}"
    fi
    # A socket file left behind by a dead daemon would make the bind fail.
    if [[ -S "${socket}" ]]; then
        log "removing stale socket ${socket}"
        rm -f "${socket}"
    fi
    # A containerd orphaned by a killed dockerd is found and reused by the new
    # dockerd through exec-root/containerd/containerd.pid, so that file stays.

    local -a args=(
        --bridge=none --iptables=false --ip6tables=false
        --data-root "${state_dir}/data"
        --exec-root "${state_dir}/exec"
        --pidfile "${pid_file}"
        --host "unix://${socket}"
    )
    if [[ -n "${CROWSNEST_DOCKERD_STORAGE:-}" ]]; then
        args+=(--storage-driver "${CROWSNEST_DOCKERD_STORAGE}")
    fi
    log "starting dockerd (state ${state_dir}, socket ${socket}, log ${log_file})"
    {
        printf '\n==== %s dockerd %s\n' "$(date -u +%FT%TZ)" "${args[*]}"
    } >>"${log_file}"
    # setsid: the daemon must outlive this script and its caller's process group.
    setsid dockerd "${args[@]}" >>"${log_file}" 2>&1 </dev/null &
    local started_pid=$!
    wait_until_answers "${started_pid}"
    log "dockerd is up (pid $(our_live_pid || echo "${started_pid}"))"
}

cmd_stop() {
    local pid
    if ! pid="$(our_live_pid)"; then
        rm -f "${pid_file}"
        if daemon_answers; then
            log "the daemon on ${socket} was not started by this script; leaving it alone"
        else
            log "no dockerd started by this script is running"
        fi
        return 0
    fi
    log "stopping dockerd (pid ${pid})"
    kill -TERM "${pid}"
    local deadline=$((SECONDS + 30))
    while process_alive "${pid}"; do
        if ((SECONDS >= deadline)); then
            log "dockerd did not exit within 30s; sending SIGKILL"
            kill -KILL "${pid}" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "${pid_file}"
    log "dockerd stopped"
}

cmd_status() {
    if daemon_answers; then
        log "a Docker daemon answers on ${socket}"
        return 0
    fi
    log "no Docker daemon answers on ${socket} (run scripts/dockerd.sh start)"
    return 1
}

# Builds one image FROM scratch holding busybox; VERSION lands in a file and a
# label so that every tag gets its own image id.
build_busybox_image() {
    local tag="$1" version="$2"
    local context="${build_root}/${version}"
    mkdir -p "${context}/rootfs/bin" "${context}/rootfs/etc"
    cp "${busybox_bin}" "${context}/rootfs/bin/busybox"
    ln -s busybox "${context}/rootfs/bin/sh"
    ln -s busybox "${context}/rootfs/bin/sleep"
    printf '%s\n' "${version}" >"${context}/rootfs/etc/crowsnest-test-version"
    cat >"${context}/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
LABEL org.opencontainers.image.version="${version}" crowsnest-test="1"
ENTRYPOINT ["/bin/busybox"]
CMD ["sleep", "3600"]
EOF
    log "building ${tag}"
    # The legacy builder prints a deprecation notice on every build: show the
    # builder's stderr only when the build fails.
    if ! DOCKER_BUILDKIT=0 docker_cli build --quiet --tag "${tag}" "${context}" \
        >/dev/null 2>"${context}/build.err"; then
        cat "${context}/build.err" >&2
        die "building ${tag} failed"
    fi
}

cmd_build_images() {
    daemon_answers || die "no Docker daemon answers on ${socket} (run scripts/dockerd.sh start)"
    busybox_bin="$(command -v busybox || true)"
    [[ -n "${busybox_bin}" ]] || die "busybox not found (apt-get install -y busybox-static)"
    if ldd "${busybox_bin}" >/dev/null 2>&1; then
        die "${busybox_bin} is dynamically linked; install busybox-static"
    fi
    build_root="$(mktemp -d)"
    trap 'rm -rf "${build_root}"' EXIT
    build_busybox_image crowsnest-test/busybox:1.0 1.0
    build_busybox_image crowsnest-test/busybox:1.1 1.1
    build_busybox_image crowsnest-test/busybox:2.0 2.0
    docker_cli tag crowsnest-test/busybox:1.1 crowsnest-test/busybox:latest
    log "test images ready: crowsnest-test/busybox:{1.0,1.1,2.0,latest}"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
build-images) cmd_build_images ;;
*)
    printf 'usage: %s start|stop|status|build-images\n' "$0" >&2
    exit 2
    ;;
esac
