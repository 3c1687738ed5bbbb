#!/usr/bin/env bash
# stop.sh DIR — stop the broker started by `start.sh DIR PORT`.
# Sends SIGTERM (controlled shutdown) to the PID in DIR/kafka.pid, waits up to
# KAFKA_STOP_TIMEOUT seconds (default 30), then SIGKILL. Only that PID is
# touched, and only if its command line is a kafka.Kafka JVM (guards against
# PID reuse). Exits 0 if the broker is not running.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
PIDFILE=$DIR/kafka.pid
TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

log() { echo "kafka/stop.sh: $*" >&2; }

if [ ! -f "$PIDFILE" ]; then
  log "no $PIDFILE, nothing to stop"
  exit 0
fi
PID=$(cat "$PIDFILE")

alive() {
  kill -0 "$PID" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

if ! alive; then
  log "pid $PID is not a running broker"
  rm -f "$PIDFILE"
  exit 0
fi

kill -TERM "$PID"
deadline=$((SECONDS + TIMEOUT))
while alive && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
if alive; then
  log "pid $PID still alive after ${TIMEOUT}s, sending SIGKILL"
  kill -KILL "$PID" 2>/dev/null || true
  while alive; do sleep 0.1; done
fi
rm -f "$PIDFILE"
log "stopped pid $PID"
