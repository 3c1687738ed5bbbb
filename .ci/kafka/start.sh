#!/usr/bin/env bash
# start.sh DIR PORT — start a single-node Apache Kafka broker (KRaft, combined
# broker+controller, PLAINTEXT on 127.0.0.1:PORT) in the background and wait
# until it is ready. No Docker, no Kafka tarball: the jars come from Maven
# (see pom.xml next to this script) and run on the system Java (17+).
#
# Jar cache (fetched once, reused afterwards):
#   $KAFKA_LIBS if set, else <dir of this script>/libs   (i.e. .ci/kafka/libs,
#   git-ignored). The cache is re-fetched when pom.xml changes (stamp file
#   libs/.stamp holds the pom's sha256). Fetch needs `mvn` and ~43 MB.
#
# What it does in DIR (created if missing):
#   server.properties, log4j2.properties  written fresh on every start
#   data/                                 Kafka log dir; WIPED and re-formatted
#                                         with a new random cluster id on every
#                                         (non-running) start
#   kafka.log                             broker stdout/stderr + log4j output
#                                         (previous run kept as kafka.log.prev)
#   kafka.pid                             broker PID (used by stop.sh DIR)
#   controller.port                       the CONTROLLER listener port chosen
#   tools-log4j2.properties               quiet log config for console tools
#   mvn.log                               output of the jar fetch (if it ran)
# If DIR/kafka.pid names a live broker already, it only waits for readiness.
#
# Optional environment:
#   KAFKA_LIBS             jar cache dir (see above)
#   KAFKA_CONTROLLER_PORT  CONTROLLER listener port (default: a free random one)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   KAFKA_HEAP_OPTS        default "-Xms128m -Xmx512m"
#   KAFKA_JVM_OPTS         extra JVM flags
#   JAVA                   java binary (default: java on PATH)
#   KAFKA_SASL_SSL_PORT    also listen with SASL_SSL (SCRAM-SHA-512 over TLS)
#                          on 127.0.0.1:THIS_PORT; then these are required:
#   KAFKA_SSL_KEYSTORE_PEM the broker's PKCS#8 private key and certificate
#                          chain in one PEM file
#   KAFKA_SCRAM_USER, KAFKA_SCRAM_PASSWORD
#                          the SCRAM-SHA-512 user the storage is formatted
#                          with (kafka-storage format --add-scram)
#
# Exit status 0 once the port accepts connections and the log shows
# "Kafka Server started" (and, if kcat is installed, `kcat -L` succeeds);
# otherwise non-zero with the tail of DIR/kafka.log on stderr.
set -euo pipefail

usage() { echo "usage: $0 DIR PORT" >&2; exit 2; }
[ $# -eq 2 ] || usage
DIR=$1
PORT=$2
case $PORT in ''|*[!0-9]*) usage ;; esac

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIBS=${KAFKA_LIBS:-$SCRIPT_DIR/libs}
JAVA=${JAVA:-java}
TIMEOUT=${KAFKA_START_TIMEOUT:-90}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG=$DIR/kafka.log
PIDFILE=$DIR/kafka.pid

log() { echo "kafka/start.sh: $*" >&2; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

is_kafka_pid() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

# alive and not a zombie (the just-started JVM is our child until we exit)
pid_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

STARTED_PID=  # set once we launched a broker; fail() then stops it again
fail() {
  log "$*"
  if [ -f "$LOG" ]; then
    echo "----- tail of $LOG -----" >&2
    tail -n 60 "$LOG" >&2
    echo "-----" >&2
  fi
  if [ -n "$STARTED_PID" ] && pid_alive "$STARTED_PID"; then
    log "stopping the broker we started (pid $STARTED_PID)"
    kill -TERM "$STARTED_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$STARTED_PID" || break; sleep 0.2; done
    kill -KILL "$STARTED_PID" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi
  exit 1
}

# --- 1. jars --------------------------------------------------------------
fetch_jars() {
  local stamp want
  want=$(sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1)
  stamp=$LIBS/.stamp
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  command -v mvn >/dev/null || fail "mvn not found and no jar cache in $LIBS"
  log "fetching Kafka jars into $LIBS (mvn dependency:copy-dependencies)"
  local tmp
  mkdir -p "$(dirname "$LIBS")"
  tmp=$(mktemp -d "$LIBS.tmp.XXXXXX") && chmod 755 "$tmp"
  if ! mvn -q -B -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" >"$DIR/mvn.log" 2>&1; then
    rm -rf "$tmp"
    LOG=$DIR/mvn.log fail "mvn dependency:copy-dependencies failed"
  fi
  echo "$want" >"$tmp/.stamp"
  # another start.sh may have filled the cache meanwhile: keep its copy
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$LIBS"
  mv -T "$tmp" "$LIBS" || { rm -rf "$tmp"; [ -f "$stamp" ] || fail "could not install $LIBS"; }
}
fetch_jars

CP="$LIBS/*"

# --- 2. already running? --------------------------------------------------
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) pid=$1
  while :; do
    pid_alive "$pid" || fail "broker (pid $pid) exited during startup"
    if port_open "$PORT" && grep -q 'Kafka Server started' "$LOG" 2>/dev/null; then
      if command -v kcat >/dev/null; then
        if timeout 10 kcat -b "127.0.0.1:$PORT" -L -m 5 >/dev/null 2>&1; then
          return 0
        fi
      else
        return 0
      fi
    fi
    [ $SECONDS -lt $deadline ] || fail "broker not ready on 127.0.0.1:$PORT after ${TIMEOUT}s"
    sleep 0.5
  done
}

if [ -f "$PIDFILE" ] && is_kafka_pid "$(cat "$PIDFILE")"; then
  log "broker already running (pid $(cat "$PIDFILE")), waiting for readiness"
  wait_ready "$(cat "$PIDFILE")"
  log "ready on 127.0.0.1:$PORT"
  exit 0
fi
rm -f "$PIDFILE"

port_open "$PORT" && fail "port $PORT is already in use"
SASL_PORT=${KAFKA_SASL_SSL_PORT:-}
if [ -n "$SASL_PORT" ]; then
  [ -n "${KAFKA_SSL_KEYSTORE_PEM:-}" ] && [ -n "${KAFKA_SCRAM_USER:-}" ] && [ -n "${KAFKA_SCRAM_PASSWORD:-}" ] ||
    fail "KAFKA_SASL_SSL_PORT needs KAFKA_SSL_KEYSTORE_PEM, KAFKA_SCRAM_USER and KAFKA_SCRAM_PASSWORD"
  port_open "$SASL_PORT" && fail "port $SASL_PORT is already in use"
fi

# --- 3. controller port ---------------------------------------------------
if [ -n "${KAFKA_CONTROLLER_PORT:-}" ]; then
  CPORT=$KAFKA_CONTROLLER_PORT
else
  CPORT=
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    [ "$p" != "$PORT" ] || continue
    if ! port_open "$p"; then CPORT=$p; break; fi
  done
  [ -n "$CPORT" ] || fail "could not find a free controller port"
fi
port_open "$CPORT" && fail "controller port $CPORT is already in use"
echo "$CPORT" >"$DIR/controller.port"

# --- 4. config ------------------------------------------------------------
LISTENERS=PLAINTEXT://127.0.0.1:$PORT
[ -z "$SASL_PORT" ] || LISTENERS=$LISTENERS,SASL_SSL://127.0.0.1:$SASL_PORT
cat >"$DIR/server.properties" <<EOF
# generated by .ci/kafka/start.sh
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=$LISTENERS,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=$LISTENERS
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$DIR/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
if [ -n "$SASL_PORT" ]; then
  # The secured listener: TLS with a PEM keystore, clients authenticated
  # with SCRAM-SHA-512 (the user is stored in the metadata log by format).
  cat >>"$DIR/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_SSL_KEYSTORE_PEM
ssl.client.auth=none
EOF
fi

cat >"$DIR/log4j2.properties" <<'EOF'
# generated by .ci/kafka/start.sh: everything to stdout (redirected to kafka.log)
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
EOF

# Quiet config for client tools run from the same jars (warnings to stderr), e.g.
#   java -Dlog4j2.configurationFile=DIR/tools-log4j2.properties -cp 'LIBS/*' \
#     org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:PORT --topic t
cat >"$DIR/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
EOF

JVM_COMMON=(-Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$DIR/log4j2.properties"
  "-Dkafka.logs.dir=$DIR")

[ ! -f "$LOG" ] || mv -f "$LOG" "$LOG.prev"
: >"$LOG"

# --- 5. format storage (fresh every start) --------------------------------
rm -rf "$DIR/data"
CLUSTER_ID=
while [ -z "$CLUSTER_ID" ] || [ "${CLUSTER_ID#-}" != "$CLUSTER_ID" ]; do
  # Kafka Uuid: 16 random bytes, url-safe base64 without padding (22 chars);
  # avoid a leading '-' (it would look like a CLI flag).
  CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
done
# shellcheck disable=SC2086
if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 "${JVM_COMMON[@]}" -cp "$CP" \
      kafka.tools.StorageTool format --standalone \
      --cluster-id "$CLUSTER_ID" --config "$DIR/server.properties" \
      ${SASL_PORT:+--add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]"} >>"$LOG" 2>&1; then
  fail "kafka-storage format failed"
fi

# --- 6. start -------------------------------------------------------------
# shellcheck disable=SC2086
nohup "$JAVA" $HEAP_OPTS \
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
  -XX:+ExplicitGCInvokesConcurrent \
  "${JVM_COMMON[@]}" ${KAFKA_JVM_OPTS:-} \
  -cp "$CP" kafka.Kafka "$DIR/server.properties" \
  >>"$LOG" 2>&1 </dev/null &
PID=$!
STARTED_PID=$PID
echo "$PID" >"$PIDFILE"
log "started broker pid $PID (cluster $CLUSTER_ID, controller port $CPORT), waiting up to ${TIMEOUT}s"

START=$SECONDS
wait_ready "$PID"
log "ready on 127.0.0.1:$PORT after $((SECONDS - START))s"
