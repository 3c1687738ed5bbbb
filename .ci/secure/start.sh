#!/usr/bin/env bash
# start.sh DIR REDIS_TLS_PORT KAFKA_SASL_SSL_PORT — prepare the secured
# servers beside the plaintext ones CI and make deps-up start:
#   - a CA and server certificates for Redis and Kafka (libs/certs) in DIR/certs;
#   - fresh random passwords for a Redis ACL user and a Kafka SCRAM user;
#   - a Redis with TLS only (no plaintext port) on 127.0.0.1:REDIS_TLS_PORT,
#     whose default user is off: only the ACL user "recsys" gets in;
#   - DIR/env: the variables that make .ci/kafka/start.sh add a SASL_SSL
#     (SCRAM-SHA-512) listener on 127.0.0.1:KAFKA_SASL_SSL_PORT, and the
#     RECSYS_TEST_* variables that the tests of libs/featurestore and
#     libs/eventstream read. Source it before .ci/kafka/start.sh.
# Stop the Redis with: kill "$(cat DIR/redis-tls.pid)".
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIR REDIS_TLS_PORT KAFKA_SASL_SSL_PORT" >&2; exit 2; }
cd "$(dirname "$0")/../.."
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
REDIS_PORT=$2
KAFKA_PORT=$3

certs=$DIR/certs
go run ./libs/certs/cmd/certs -dir "$certs" -services redis,kafka >/dev/null
# Kafka's PEM keystore wants a PKCS#8 key followed by the certificate.
openssl pkcs8 -topk8 -nocrypt -in "$certs/kafka-key.pem" -out "$certs/kafka-keystore.pem"
cat "$certs/kafka.pem" >>"$certs/kafka-keystore.pem"
chmod 600 "$certs/kafka-keystore.pem"

redis_password=$(openssl rand -hex 16)
kafka_password=$(openssl rand -hex 16)

# Redis: TLS only, no client certificate asked (clients authenticate with
# the ACL password), the default user disabled.
cat >"$DIR/redis-users.acl" <<ACL
user default off
user recsys on >$redis_password ~* &* +@all -@dangerous +info
ACL
chmod 600 "$DIR/redis-users.acl"
redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 \
  --tls-cert-file "$certs/redis.pem" --tls-key-file "$certs/redis-key.pem" \
  --tls-ca-cert-file "$certs/ca.pem" --tls-auth-clients no \
  --aclfile "$DIR/redis-users.acl" \
  --save "" --appendonly no --daemonize yes \
  --pidfile "$DIR/redis-tls.pid" --dir "$DIR" --logfile "$DIR/redis-tls.log"
for _ in $(seq 50); do
  redis-cli --tls --cacert "$certs/ca.pem" -p "$REDIS_PORT" --user recsys --pass "$redis_password" --no-auth-warning ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli --tls --cacert "$certs/ca.pem" -p "$REDIS_PORT" --user recsys --pass "$redis_password" --no-auth-warning ping >/dev/null

cat >"$DIR/env" <<ENV
export KAFKA_SASL_SSL_PORT=$KAFKA_PORT
export KAFKA_SSL_KEYSTORE_PEM=$certs/kafka-keystore.pem
export KAFKA_SCRAM_USER=recsys
export KAFKA_SCRAM_PASSWORD=$kafka_password
export RECSYS_TEST_REDIS_TLS_ADDR=127.0.0.1:$REDIS_PORT
export RECSYS_TEST_REDIS_TLS_CA=$certs/ca.pem
export RECSYS_TEST_REDIS_USER=recsys
export RECSYS_TEST_REDIS_PASSWORD=$redis_password
export RECSYS_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_PORT
export RECSYS_TEST_KAFKA_CA=$certs/ca.pem
export RECSYS_TEST_KAFKA_SASL_USER=recsys
export RECSYS_TEST_KAFKA_SASL_PASSWORD=$kafka_password
ENV
chmod 600 "$DIR/env"
echo "secure/start.sh: TLS+ACL Redis on 127.0.0.1:$REDIS_PORT; Kafka SASL_SSL settings in $DIR/env" >&2
