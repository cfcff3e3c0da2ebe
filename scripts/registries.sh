#!/usr/bin/env bash
# Loopback registry test world for crowsnest's registry tests.
#
#   scripts/registries.sh start   # (re)start everything, write target/test-env/registries.env
#   scripts/registries.sh stop    # stop what a previous start left running
#   scripts/registries.sh status
#
# Starts CNCF distribution 2.8 (`docker-registry serve`, Debian package
# docker-registry) on 127.0.0.1 only:
#   :5001 plain (no auth)
#   :5002 htpasswd Basic auth (alice / wonderland)
#   :5003 token auth; realm = the test token server, /v2/ challenge without scope (Docker-Hub-like)
#   :5004 pull-through proxy (mirror) of :5001
# and the test token server (tests/token-server) on 127.0.0.1:5010 (ports
# relative to CROWSNEST_TEST_PORT_BASE, see below): anonymous
# pull on repositories under public/, user bob / builder may do everything.
# State (configs, data, logs, pid files, keys) lives in target/test-env/registries/.
# Needs: docker-registry, apache2-utils (htpasswd), openssl, curl, cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_DIR="$ROOT/target/test-env"
STATE="$ENV_DIR/registries"
ENV_FILE="$ENV_DIR/registries.env"
HOST=127.0.0.1
# CROWSNEST_TEST_PORT_BASE moves every port (default 5000: plain on 5001), so
# two test worlds (say, a developer's and a CI run's) can run side by side.
PORT_BASE=${CROWSNEST_TEST_PORT_BASE:-5000}
PLAIN_PORT=$((PORT_BASE + 1))
BASIC_PORT=$((PORT_BASE + 2))
TOKEN_PORT=$((PORT_BASE + 3))
PROXY_PORT=$((PORT_BASE + 4))
TOKEN_SERVER_PORT=$((PORT_BASE + 10))
TOKEN_SERVICE=crowsnest-test-registry
TOKEN_ISSUER=crowsnest-test-token-server
NAMES=(plain basic token proxy)

log() { printf 'registries: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require() {
  local tool=$1 package=$2
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: apt-get install -y $package"
}

port_of() {
  case $1 in
    plain) echo $PLAIN_PORT ;; basic) echo $BASIC_PORT ;; token) echo $TOKEN_PORT ;;
    proxy) echo $PROXY_PORT ;; token-server) echo $TOKEN_SERVER_PORT ;;
  esac
}

# Stops the process in PIDFILE if it is still the one we started (its command
# line mentions our state directory), then removes the pid file.
stop_one() {
  local name=$1 pidfile="$STATE/$1.pid"
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$STATE"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop_all() {
  for name in "${NAMES[@]}" token-server; do
    stop_one "$name"
  done
  rm -f "$ENV_FILE"
}

port_free() {
  ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

wait_http() {
  local name=$1 url=$2
  for _ in $(seq 1 100); do
    if curl --silent --output /dev/null --max-time 2 --noproxy '*' "$url"; then
      return 0
    fi
    if ! kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
      tail -n 20 "$STATE/$name.log" >&2 || true
      die "$name exited during start-up (log: $STATE/$name.log)"
    fi
    sleep 0.1
  done
  tail -n 20 "$STATE/$name.log" >&2 || true
  die "$name did not answer on $url (log: $STATE/$name.log)"
}

write_keys() {
  if [[ ! -f $STATE/token.key.pk8.der || ! -f $STATE/token.crt.pem ]]; then
    openssl genrsa -out "$STATE/token.key.pem" 2048 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$STATE/token.key.pem" -outform DER -out "$STATE/token.key.pk8.der"
    # distribution checks the x5c leaf for digitalSignature and verifies it against the root bundle.
    openssl req -x509 -new -key "$STATE/token.key.pem" -days 3650 -subj "/CN=$TOKEN_ISSUER" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyCertSign" \
      -out "$STATE/token.crt.pem" 2>/dev/null
    openssl x509 -in "$STATE/token.crt.pem" -outform DER -out "$STATE/token.crt.der"
  fi
  if [[ ! -f $STATE/htpasswd ]]; then
    htpasswd -Bbn alice wonderland >"$STATE/htpasswd"
  fi
}

# write_config NAME PORT EXTRA_YAML
write_config() {
  local name=$1 port=$2 extra=$3
  mkdir -p "$STATE/$name-data"
  cat >"$STATE/$name.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $STATE/$name-data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $HOST:$port
  secret: crowsnest-test-$name-secret
$extra
EOF
}

start_registry() {
  local name=$1 port
  port=$(port_of "$name")
  port_free "$port" || die "port $HOST:$port is in use by another process"
  nohup docker-registry serve "$STATE/$name.yml" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

start_all() {
  require docker-registry docker-registry
  require htpasswd apache2-utils
  require openssl openssl
  require curl curl
  require cargo cargo
  stop_all
  mkdir -p "$STATE"
  write_keys

  log "building the token server"
  (cd "$ROOT" && cargo build --quiet -p crowsnest-token-server)
  local token_server="$ROOT/target/debug/crowsnest-token-server"
  port_free $TOKEN_SERVER_PORT || die "port $HOST:$TOKEN_SERVER_PORT is in use by another process"
  nohup "$token_server" --listen "$HOST:$TOKEN_SERVER_PORT" \
    --key "$STATE/token.key.pk8.der" --cert "$STATE/token.crt.der" \
    --issuer "$TOKEN_ISSUER" --service "$TOKEN_SERVICE" --user bob:builder \
    >"$STATE/token-server.log" 2>&1 </dev/null &
  echo $! >"$STATE/token-server.pid"

  write_config plain $PLAIN_PORT ""
  write_config basic $BASIC_PORT "auth:
  htpasswd:
    realm: crowsnest-test-basic
    path: $STATE/htpasswd"
  write_config token $TOKEN_PORT "auth:
  token:
    realm: http://$HOST:$TOKEN_SERVER_PORT/token
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $STATE/token.crt.pem"
  write_config proxy $PROXY_PORT "proxy:
  remoteurl: http://$HOST:$PLAIN_PORT"
  for name in plain basic token; do
    start_registry "$name"
  done
  wait_http token-server "http://$HOST:$TOKEN_SERVER_PORT/health"
  for name in plain basic token; do
    wait_http "$name" "http://$HOST:$(port_of "$name")/v2/"
  done
  # The proxy pings its upstream at start-up, so it starts once :$PLAIN_PORT answers.
  start_registry proxy
  wait_http proxy "http://$HOST:$PROXY_PORT/v2/"

  cat >"$ENV_FILE" <<EOF
export CROWSNEST_TEST_REGISTRY_PLAIN=http://$HOST:$PLAIN_PORT
export CROWSNEST_TEST_REGISTRY_BASIC=http://$HOST:$BASIC_PORT
export CROWSNEST_TEST_REGISTRY_BASIC_USER=alice
export CROWSNEST_TEST_REGISTRY_BASIC_PASSWORD=wonderland
export CROWSNEST_TEST_REGISTRY_TOKEN=http://$HOST:$TOKEN_PORT
export CROWSNEST_TEST_REGISTRY_TOKEN_USER=bob
export CROWSNEST_TEST_REGISTRY_TOKEN_PASSWORD=builder
export CROWSNEST_TEST_REGISTRY_PROXY=http://$HOST:$PROXY_PORT
export CROWSNEST_TEST_REGISTRY_TOKEN_SERVER=http://$HOST:$TOKEN_SERVER_PORT
EOF
  log "all up; source $ENV_FILE"
}

status_all() {
  for name in "${NAMES[@]}" token-server; do
    local pidfile="$STATE/$name.pid" state=stopped
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      state="running (pid $(cat "$pidfile"))"
    fi
    printf '%-13s %s:%s %s\n' "$name" "$HOST" "$(port_of "$name")" "$state"
  done
}

case ${1:-} in
  start) start_all ;;
  stop) stop_all ;;
  status) status_all ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
