#!/usr/bin/env bash
# Local Apache Kafka (KRaft, no ZooKeeper) on loopback, from the broker jars on Maven Central.
#
#   deploy/local/kafka.sh fetch              download the broker jars into the cache (idempotent)
#   deploy/local/kafka.sh start              one broker+controller on 127.0.0.1:$KAFKA_PORT (9092)
#   deploy/local/kafka.sh start --cluster    three nodes on ports 9092-9094, RF=3, min.insync.replicas=2
#   deploy/local/kafka.sh stop               stop every node this script started (by pid), wipe nothing
#   deploy/local/kafka.sh stop-node N        stop node N only (fault tests);  start-node N  brings it back
#   deploy/local/kafka.sh status             which nodes run, and whether the cluster answers metadata
#   deploy/local/kafka.sh wait [N]           block until N brokers answer a metadata request
#   deploy/local/kafka.sh reset              stop and delete the local data directory
#
# Environment: KAFKA_VERSION (4.1.1), KAFKA_PORT (9092, first broker port), KAFKA_RUN_DIR (.run/kafka),
# KAFKA_CACHE_DIR (.cache/kafka), KAFKA_HEAP (512m), PYTHON (.venv/bin/python, for the metadata probe).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
# The local hub's broker: `make up` on other ports wrote them to .run/hub.env, so `kafka.sh status`
# (and stop/start, as the runbook uses them) act on that broker, not on 9092 — maybe another user's.
# An explicit KAFKA_PORT or KAFKA_RUN_DIR wins; CARINHO_HUB_ENV_FILE="" reads no file (the tests).
HUB_ENV_FILE="${CARINHO_HUB_ENV_FILE-$ROOT/.run/hub.env}"
if [ -z "${KAFKA_PORT:-}" ] && [ -z "${KAFKA_RUN_DIR:-}" ] && [ -n "$HUB_ENV_FILE" ] && [ -f "$HUB_ENV_FILE" ]; then
  KAFKA_PORT="$(sed -n 's/^KAFKA_PORT=//p' "$HUB_ENV_FILE" | tail -n 1)"
  hub_run_dir="$(sed -n 's/^KAFKA_RUN_DIR=//p' "$HUB_ENV_FILE" | tail -n 1)"
  [ -n "$hub_run_dir" ] && KAFKA_RUN_DIR="$hub_run_dir"
fi
KAFKA_PORT="${KAFKA_PORT:-9092}"
RUN_DIR="${KAFKA_RUN_DIR:-$ROOT/.run/kafka}"
CACHE_DIR="${KAFKA_CACHE_DIR:-$ROOT/.cache/kafka}"
LIBS="$CACHE_DIR/$KAFKA_VERSION/libs"
HEAP="${KAFKA_HEAP:-512m}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*"; }

check_prereqs() {
  command -v java >/dev/null 2>&1 || die "Java 17+ is required (apt-get install openjdk-17-jre-headless)."
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ is required, found ${major:-unknown}."
}

fetch() {
  check_prereqs
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null 2>&1 || die "Maven is required to fetch the broker jars (apt-get install maven)."
  say "fetching Apache Kafka $KAFKA_VERSION broker jars from Maven Central into $LIBS"
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  mvn -q -B -f "$ROOT/deploy/local/kafka-pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    || die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see the output above)."
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "broker jar missing after mvn in $LIBS"
  touch "$LIBS/.complete"
}

# node N (1-based) -> ports
broker_port() { echo $((KAFKA_PORT + $1 - 1)); }
controller_port() { echo $((KAFKA_PORT + 1000 + $1 - 1)); }

node_dir() { echo "$RUN_DIR/node$1"; }
pid_file() { echo "$(node_dir "$1")/kafka.pid"; }

node_running() {
  local pf; pf=$(pid_file "$1")
  [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null
}

nodes_configured() { cat "$RUN_DIR/nodes" 2>/dev/null || echo 0; }

write_config() { # node count
  local n=$1 count=$2 dir voters="" i
  dir=$(node_dir "$n")
  mkdir -p "$dir/data"
  for i in $(seq 1 "$count"); do voters="${voters:+$voters,}$i@127.0.0.1:$(controller_port "$i")"; done
  local rf=1 isr=1 session_ms=${KAFKA_BROKER_SESSION_TIMEOUT_MS:-30000}
  if [ "$count" -ge 3 ]; then rf=3; isr=2; session_ms=${KAFKA_BROKER_SESSION_TIMEOUT_MS:-12000}; fi
  cat > "$dir/server.properties" <<EOF
# written by deploy/local/kafka.sh; regenerated on every start
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.check.interval.ms=60000
# Shared 2-core dev/CI machines starve the JVM at times; a short session fences the only broker
# and takes every leader away. Generous on one node, shorter on the 3-node cluster (failover tests).
broker.session.timeout.ms=$session_ms
broker.heartbeat.interval.ms=2000
EOF
  cat > "$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF
}

format_node() { # node cluster_id
  local dir; dir=$(node_dir "$1")
  if [ -f "$dir/data/meta.properties" ]; then return 0; fi
  java -cp "$LIBS/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    kafka.tools.StorageTool format -t "$2" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; die "formatting KRaft storage for node $1 failed"; }
}

start_node() {
  local n=$1 dir; dir=$(node_dir "$n")
  if node_running "$n"; then say "node $n already running (pid $(cat "$(pid_file "$n")"), port $(broker_port "$n"))"; return 0; fi
  local port; port=$(broker_port "$n")
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    local holder=""  # who, when `ss -ltnp` can tell (same user, or root)
    if command -v ss >/dev/null 2>&1; then
      holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 |
        sed -E 's/users:\(\("([^"]*)",pid=([0-9]+)/\1 (pid \2)/' || true)
    fi
    die "port $port is taken by another process${holder:+ ($holder)}; set KAFKA_PORT or stop it"
  fi
  # setsid: the broker must outlive the shell (and make) that started it.
  setsid nohup java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 < /dev/null &
  echo $! > "$(pid_file "$n")"
  say "node $n starting (pid $!, broker 127.0.0.1:$port)"
}

wait_ready() { # brokers timeout
  local want=${1:-1} timeout=${2:-90}
  local bootstrap; bootstrap=$(bootstrap_servers "$want")
  if [ -x "$PYTHON" ] && "$PYTHON" -c "import hub.kafka_probe" 2>/dev/null; then
    "$PYTHON" -m hub.kafka_probe --bootstrap "$bootstrap" --brokers "$want" --timeout "$timeout" \
      || die "Kafka did not answer metadata with $want broker(s) within ${timeout}s; see $RUN_DIR/node*/server.log"
  else
    # Without the project's venv: fall back to the broker's own log line.
    local deadline=$((SECONDS + timeout))
    until grep -q "Kafka Server started" "$(node_dir 1)/server.log" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || die "Kafka did not start within ${timeout}s; see $(node_dir 1)/server.log"
      sleep 0.5
    done
  fi
}

bootstrap_servers() {
  local count=${1:-1} i s=""
  for i in $(seq 1 "$count"); do s="${s:+$s,}127.0.0.1:$(broker_port "$i")"; done
  echo "$s"
}

start() {
  local count=1
  [ "${1:-}" = "--cluster" ] && count=3
  fetch
  mkdir -p "$RUN_DIR"
  local existing; existing=$(nodes_configured)
  if [ "$existing" != 0 ] && [ "$existing" != "$count" ]; then
    if any_running; then die "a $existing-node setup is running; run '$0 stop' first"; fi
    say "switching from $existing to $count node(s): wiping $RUN_DIR"
    rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"
  fi
  echo "$count" > "$RUN_DIR/nodes"
  local cluster_id
  if [ -f "$RUN_DIR/cluster.id" ]; then cluster_id=$(cat "$RUN_DIR/cluster.id"); else
    cluster_id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    echo "$cluster_id" > "$RUN_DIR/cluster.id"
  fi
  local i
  for i in $(seq 1 "$count"); do write_config "$i" "$count"; format_node "$i" "$cluster_id"; done
  for i in $(seq 1 "$count"); do start_node "$i"; done
  wait_ready "$count" "${KAFKA_START_TIMEOUT:-120}"
  say "ready: bootstrap $(bootstrap_servers "$count") (Apache Kafka $KAFKA_VERSION, KRaft)"
}

any_running() {
  local i
  for i in 1 2 3; do node_running "$i" && return 0; done
  return 1
}

stop_node() {
  local n=$1 pf pid; pf=$(pid_file "$n")
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    local t=0
    while kill -0 "$pid" 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    say "node $n stopped (pid $pid)"
  fi
  rm -f "$pf"
}

stop() {
  local i
  for i in 1 2 3; do stop_node "$i"; done
}

status() {
  local count i rc=1; count=$(nodes_configured)
  for i in $(seq 1 "$count"); do
    if node_running "$i"; then echo "node $i: running (pid $(cat "$(pid_file "$i")"), 127.0.0.1:$(broker_port "$i"))"; rc=0
    else echo "node $i: stopped"; fi
  done
  [ "$count" = 0 ] && echo "no local Kafka configured"
  return $rc
}

cmd="${1:-}"; shift || true
case "$cmd" in
  fetch) fetch ;;
  start) start "$@" ;;
  stop) stop ;;
  stop-node) stop_node "${1:?node number}" ;;
  start-node) start_node "${1:?node number}" ;;
  status) status ;;
  wait) wait_ready "${1:-1}" "${2:-90}" ;;
  bootstrap) bootstrap_servers "$(nodes_configured)" ;;
  reset) stop; rm -rf "$RUN_DIR"; say "removed $RUN_DIR" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
