#!/usr/bin/env bash
# The local hub on loopback: Kafka (KRaft), topics, the sandbox destinations, connectors,
# processors and the ingress, each in the background with a pid file and a log.
#
#   deploy/local/hub.sh up       start whatever is not running yet (idempotent), wait until healthy
#   deploy/local/hub.sh down     stop everything it started; leaves no process and no port behind
#   deploy/local/hub.sh status   what runs, where
#
# Logs: .run/logs/<service>.log   Pids: .run/pids/<service>.pid   Dev API key: .run/dev-api-key
# (HUB_RUN_DIR moves all of it, and KAFKA_PORT / CARINHO_*_PORT move every port: a second hub, or a test.)
# Settings: `up` writes what it gave the services (Kafka, ports, URLs) to .run/hub.env, `down` removes it;
# status/down (and an `up` while the hub still runs) take from it what the environment does not set,
# and so does the carinho CLI (cli/settings.py), from any shell.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUN="${HUB_RUN_DIR:-$ROOT/.run}"
HUB_ENV="$RUN/hub.env"
# What hub.env holds (KEY=value lines, no quoting; the CLI reads the CARINHO_ ones as a dotenv file).
HUB_ENV_KEYS="KAFKA_PORT KAFKA_RUN_DIR CARINHO_KAFKA_BOOTSTRAP_SERVERS CARINHO_TOPIC_NAMESPACE CARINHO_KEYS_FILE
  CARINHO_INGRESS_PORT CARINHO_INGRESS_URL CARINHO_SANDBOX_PORT CARINHO_SANDBOX_URL CARINHO_SOURCE_URLS
  CARINHO_PROCESSORS_PORT CARINHO_PROCESSORS_URL CARINHO_CONNECTORS_PORT CARINHO_CONNECTORS_URL"

hub_env_value() { # key: its value in hub.env (empty when absent)
  local line
  [ -f "$HUB_ENV" ] || return 0
  while IFS= read -r line; do
    if [ "${line%%=*}" = "$1" ]; then printf '%s\n' "${line#*=}"; return 0; fi
  done < "$HUB_ENV"
}

load_hub_env() { # every hub.env key the environment does not set
  local key value
  for key in $HUB_ENV_KEYS; do
    [ -z "${!key+x}" ] || continue
    value=$(hub_env_value "$key")
    [ -z "$value" ] || export "$key=$value"
  done
}

alive() { # pid: running, and not a zombie (a dead child not yet reaped still answers kill -0)
  local state
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  else
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  fi
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

hub_alive() { # any service or broker of the hub described by hub.env still runs
  local pf kafka_run
  kafka_run="${KAFKA_RUN_DIR:-$(hub_env_value KAFKA_RUN_DIR)}"
  for pf in "$RUN"/pids/*.pid "${kafka_run:-$RUN/kafka}"/node*/kafka.pid; do
    [ -f "$pf" ] && alive "$(cat "$pf")" && return 0
  done
  return 1
}

# A stale hub.env (the machine rebooted under a running hub) does not steer a fresh `up`.
case "${1:-}" in
  status|down) load_hub_env ;;
  up) if hub_alive; then load_hub_env; fi ;;
esac

export CARINHO_KEYS_FILE="${CARINHO_KEYS_FILE:-$RUN/api-keys.json}"
export KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$RUN/kafka}"
VENV="$ROOT/.venv"
CARINHO="$VENV/bin/carinho"
export CARINHO_KAFKA_BOOTSTRAP_SERVERS="${CARINHO_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
export CARINHO_SANDBOX_URL="${CARINHO_SANDBOX_URL:-http://127.0.0.1:${CARINHO_SANDBOX_PORT:-8090}}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
INGRESS_PORT="${CARINHO_INGRESS_PORT:-${CARINHO_PORT:-8080}}"
SANDBOX_PORT="${CARINHO_SANDBOX_PORT:-8090}"
PROCESSORS_PORT="${CARINHO_PROCESSORS_PORT:-6066}"
CONNECTORS_PORT="${CARINHO_CONNECTORS_PORT:-9108}"

# name | port | command | health URL | ready when the health body matches every &-separated regex
# (optional) (start order; stopped in reverse). The processors answer /health before their consumer
# group has assigned them partitions (~20 s on a new broker): `up` waits for that, so the README's first
# event is routed at once.
services() {
  cat <<EOF2
sandbox|$SANDBOX_PORT|$CARINHO sandbox --port $SANDBOX_PORT|http://127.0.0.1:$SANDBOX_PORT/_control/health
connectors|$CONNECTORS_PORT|env CARINHO_STATUS_PORT=$CONNECTORS_PORT $CARINHO connectors|http://127.0.0.1:$CONNECTORS_PORT/health
processors|$PROCESSORS_PORT|env CARINHO_WEB_PORT=$PROCESSORS_PORT CARINHO_DATA_DIR=$RUN/processors CARINHO_REPORT_DIR=$RUN/reports $CARINHO processors|http://127.0.0.1:$PROCESSORS_PORT/health|"status": *"ok"&"assigned_partitions": *[1-9]
ingress|$INGRESS_PORT|env CARINHO_PORT=$INGRESS_PORT CARINHO_PROCESSORS_URL=http://127.0.0.1:$PROCESSORS_PORT CARINHO_CONNECTORS_URL=http://127.0.0.1:$CONNECTORS_PORT $CARINHO ingress|http://127.0.0.1:$INGRESS_PORT/health
EOF2
}

say() { echo "hub: $*"; }
die() { echo "hub: $*" >&2; exit 1; }

running() { local pf="$RUN/pids/$1.pid"; [ -f "$pf" ] && alive "$(cat "$pf")"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_holder() { # port: "python3 (pid 123)" when `ss -ltnp` can tell (same user, or root)
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 |
    sed -E 's/users:\(\("([^"]*)",pid=([0-9]+)/\1 (pid \2)/' || true
}

check_port_free() { # name port env-var
  port_open "$2" || return 0
  local holder; holder=$(port_holder "$2")
  die "cannot start $1: port $2 is already in use${holder:+ by $holder}; stop it, or pick another port with $3"
}

port_var() { # service name -> the variable that moves its port
  case "$1" in
    sandbox) echo CARINHO_SANDBOX_PORT ;; connectors) echo CARINHO_CONNECTORS_PORT ;;
    processors) echo CARINHO_PROCESSORS_PORT ;; ingress) echo CARINHO_INGRESS_PORT ;;
  esac
}

write_hub_env() { # what the services are given, for status/down and the CLI in other shells
  local tmp="$HUB_ENV.tmp"
  {
    echo "# written by deploy/local/hub.sh up: the settings of the hub running from $RUN"
    echo "# (hub.sh status/down and the carinho CLI use them unless the environment sets them;"
    echo "# removed by hub.sh down)"
    echo "KAFKA_PORT=$KAFKA_PORT"
    echo "KAFKA_RUN_DIR=$KAFKA_RUN_DIR"
    echo "CARINHO_KAFKA_BOOTSTRAP_SERVERS=$CARINHO_KAFKA_BOOTSTRAP_SERVERS"
    [ -z "${CARINHO_TOPIC_NAMESPACE:-}" ] || echo "CARINHO_TOPIC_NAMESPACE=$CARINHO_TOPIC_NAMESPACE"
    echo "CARINHO_KEYS_FILE=$CARINHO_KEYS_FILE"
    echo "CARINHO_INGRESS_PORT=$INGRESS_PORT"
    echo "CARINHO_INGRESS_URL=http://127.0.0.1:$INGRESS_PORT"
    echo "CARINHO_SANDBOX_PORT=$SANDBOX_PORT"
    echo "CARINHO_SANDBOX_URL=$CARINHO_SANDBOX_URL"
    [ -z "${CARINHO_SOURCE_URLS:-}" ] || echo "CARINHO_SOURCE_URLS=$CARINHO_SOURCE_URLS"
    echo "CARINHO_PROCESSORS_PORT=$PROCESSORS_PORT"
    echo "CARINHO_PROCESSORS_URL=http://127.0.0.1:$PROCESSORS_PORT"
    echo "CARINHO_CONNECTORS_PORT=$CONNECTORS_PORT"
    echo "CARINHO_CONNECTORS_URL=http://127.0.0.1:$CONNECTORS_PORT"
  } > "$tmp"
  mv "$tmp" "$HUB_ENV"
}

ready() { # url patterns
  local body pattern
  local -a wanted
  body=$(curl -fsS --max-time 2 "$1" 2>/dev/null) || return 1
  [ -n "$2" ] || return 0
  IFS='&' read -r -a wanted <<< "$2"
  for pattern in "${wanted[@]}"; do grep -Eq -- "$pattern" <<< "$body" || return 1; done
}

wait_http() { # url timeout name [ready patterns]
  local deadline=$((SECONDS + $2))
  while true; do
    running "$3" || die "$3 exited during start-up; see $RUN/logs/$3.log"
    if ready "$1" "${4:-}"; then break; fi
    if [ $SECONDS -ge $deadline ]; then die "$3 did not become ready at $1 within $2s; see $RUN/logs/$3.log"; fi
    sleep 0.5
  done
  # The answer must be from the process just started, not from one that died right after (or another
  # one on that port): it must still run once the health check has answered.
  sleep 0.2
  running "$3" || die "$3 exited during start-up (something else answered $1); see $RUN/logs/$3.log"
}

forget_failed_up() { # exit code: an `up` that failed with nothing left running leaves no hub.env behind
  if [ "$1" -ne 0 ] && ! hub_alive; then rm -f "$HUB_ENV"; fi
}

up() {
  [ -x "$CARINHO" ] || die "the virtualenv is missing: run 'make venv' (make up does it for you)"
  mkdir -p "$RUN/pids" "$RUN/logs"
  local name port rest
  while IFS='|' read -r name port rest; do  # before anything starts: fail fast, leave nothing half up
    running "$name" || check_port_free "$name" "$port" "$(port_var "$name")"
  done < <(services)
  write_hub_env  # before the first start: a `down` after a failed `up` still finds every port
  trap 'forget_failed_up $?' EXIT
  "$ROOT/deploy/local/kafka.sh" start
  "$CARINHO" topics apply >/dev/null
  say "topics applied ($("$CARINHO" topics check 2>&1 | head -n 1))"
  if [ ! -s "$RUN/dev-api-key" ]; then
    umask 077
    "$CARINHO" keys create --source site --label "local dev (make up)" > "$RUN/dev-api-key" 2>/dev/null
    say "created a dev API key for source 'site' in $RUN/dev-api-key"
  fi
  local name port cmd url patterns
  while IFS='|' read -r name port cmd url patterns; do
    if running "$name"; then say "$name already running (pid $(cat "$RUN/pids/$name.pid"))"; continue; fi
    check_port_free "$name" "$port" "$(port_var "$name")"
    # setsid: services outlive this shell; their own process group lets `down` stop children too.
    setsid nohup $cmd >>"$RUN/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/pids/$name.pid"
    wait_http "$url" "${HUB_START_TIMEOUT:-120}" "$name" "$patterns"
    say "$name up ($url)"
  done < <(services)
  say "ready: ingress http://127.0.0.1:$INGRESS_PORT (docs at /docs), Kafka $CARINHO_KAFKA_BOOTSTRAP_SERVERS"
  if [ "$HUB_ENV" != "$ROOT/.run/hub.env" ]; then
    say "settings in $HUB_ENV: the CLI reads them with CARINHO_HUB_ENV_FILE=$HUB_ENV"
  fi
}

stop_pid() { # name
  local pf="$RUN/pids/$1.pid" pid
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local t=0
    while kill -0 "$pid" 2>/dev/null && [ $t -lt 150 ]; do sleep 0.1; t=$((t + 1)); done
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "$1 stopped"
  fi
  rm -f "$pf"
}

down() {
  local name
  for name in $(services | cut -d'|' -f1 | tac); do stop_pid "$name"; done
  "$ROOT/deploy/local/kafka.sh" stop
  local port busy=""
  # The broker's KRaft controller listens on KAFKA_PORT + 1000 (deploy/local/kafka.sh).
  for port in "$INGRESS_PORT" "$SANDBOX_PORT" "$PROCESSORS_PORT" "$CONNECTORS_PORT" "$KAFKA_PORT" $((KAFKA_PORT + 1000)); do
    if port_open "$port"; then busy="$busy $port"; fi
  done
  [ -z "$busy" ] || die "ports still answering after down:$busy"
  rm -f "$HUB_ENV"
  say "down: nothing left running"
}

status() {
  local name port cmd url patterns
  while IFS='|' read -r name port cmd url patterns; do
    if running "$name"; then echo "$name: running (pid $(cat "$RUN/pids/$name.pid")) $url"; else echo "$name: stopped"; fi
  done < <(services)
  "$ROOT/deploy/local/kafka.sh" status || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
