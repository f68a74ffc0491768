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
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUN="${HUB_RUN_DIR:-$ROOT/.run}"
export CARINHO_KEYS_FILE="${CARINHO_KEYS_FILE:-$RUN/api-keys.json}"
export KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$RUN/kafka}"
VENV="$ROOT/.venv"
CARINHO="$VENV/bin/carinho"
export CARINHO_KAFKA_BOOTSTRAP_SERVERS="${CARINHO_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
export CARINHO_SANDBOX_URL="${CARINHO_SANDBOX_URL:-http://127.0.0.1:${CARINHO_SANDBOX_PORT:-8090}}"
INGRESS_PORT="${CARINHO_INGRESS_PORT:-${CARINHO_PORT:-8080}}"
SANDBOX_PORT="${CARINHO_SANDBOX_PORT:-8090}"
PROCESSORS_PORT="${CARINHO_PROCESSORS_PORT:-6066}"
CONNECTORS_PORT="${CARINHO_CONNECTORS_PORT:-9108}"

# name | command | health URL | ready when the health body matches every &-separated regex (optional)
# (start order; stopped in reverse). The processors answer /health before their consumer group has
# assigned them partitions (~20 s on a new broker): `up` waits for that, so the README's first event
# is routed at once.
services() {
  cat <<EOF2
sandbox|$CARINHO sandbox --port $SANDBOX_PORT|http://127.0.0.1:$SANDBOX_PORT/_control/health
connectors|env CARINHO_STATUS_PORT=$CONNECTORS_PORT $CARINHO connectors|http://127.0.0.1:$CONNECTORS_PORT/health
processors|env CARINHO_WEB_PORT=$PROCESSORS_PORT CARINHO_DATA_DIR=$RUN/processors CARINHO_REPORT_DIR=$RUN/reports $CARINHO processors|http://127.0.0.1:$PROCESSORS_PORT/health|"status": *"ok"&"assigned_partitions": *[1-9]
ingress|env CARINHO_PORT=$INGRESS_PORT CARINHO_PROCESSORS_URL=http://127.0.0.1:$PROCESSORS_PORT CARINHO_CONNECTORS_URL=http://127.0.0.1:$CONNECTORS_PORT $CARINHO ingress|http://127.0.0.1:$INGRESS_PORT/health
EOF2
}

say() { echo "hub: $*"; }
die() { echo "hub: $*" >&2; exit 1; }

running() { local pf="$RUN/pids/$1.pid"; [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null; }

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
  until ready "$1" "${4:-}"; do
    if [ $SECONDS -ge $deadline ]; then die "$3 did not become ready at $1 within $2s; see $RUN/logs/$3.log"; fi
    running "$3" || die "$3 exited during start-up; see $RUN/logs/$3.log"
    sleep 0.5
  done
}

up() {
  [ -x "$CARINHO" ] || die "the virtualenv is missing: run 'make venv' (make up does it for you)"
  mkdir -p "$RUN/pids" "$RUN/logs"
  "$ROOT/deploy/local/kafka.sh" start
  "$CARINHO" topics apply >/dev/null
  say "topics applied ($("$CARINHO" topics check 2>&1 | head -n 1))"
  if [ ! -s "$RUN/dev-api-key" ]; then
    umask 077
    "$CARINHO" keys create --source site --label "local dev (make up)" > "$RUN/dev-api-key" 2>/dev/null
    say "created a dev API key for source 'site' in $RUN/dev-api-key"
  fi
  local name cmd url patterns
  while IFS='|' read -r name cmd url patterns; do
    if running "$name"; then say "$name already running (pid $(cat "$RUN/pids/$name.pid"))"; continue; fi
    # setsid: services outlive this shell; their own process group lets `down` stop children too.
    setsid nohup $cmd >>"$RUN/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/pids/$name.pid"
    wait_http "$url" "${HUB_START_TIMEOUT:-120}" "$name" "$patterns"
    say "$name up ($url)"
  done < <(services)
  say "ready: ingress http://127.0.0.1:$INGRESS_PORT (docs at /docs), Kafka $CARINHO_KAFKA_BOOTSTRAP_SERVERS"
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
  for port in "$INGRESS_PORT" "$SANDBOX_PORT" "$PROCESSORS_PORT" "$CONNECTORS_PORT" "${KAFKA_PORT:-9092}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy="$busy $port"; fi
  done
  [ -z "$busy" ] || die "ports still answering after down:$busy"
  say "down: nothing left running"
}

status() {
  local name cmd url patterns
  while IFS='|' read -r name cmd url patterns; do
    if running "$name"; then echo "$name: running (pid $(cat "$RUN/pids/$name.pid")) $url"; else echo "$name: stopped"; fi
  done < <(services)
  "$ROOT/deploy/local/kafka.sh" status || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
