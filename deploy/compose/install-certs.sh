#!/bin/sh
# install-certs.sh: run by the one-shot `certs` service of docker-compose.yml
# before any recsys service starts. It copies, for every service volume
# mounted at /out/<service>, the CA and that service's certificate and key
# from certs/ (make certs, mounted read-only at /in) into the volume, owned
# by the services' user (65532), the key readable by it alone.
#
# Why a copy: make certs writes keys 0600, owned by whoever ran it, and
# compose cannot change the owner of a bind mount (the uid/gid/mode of
# file secrets are Swarm-only), so the non-root services could not read
# their keys from certs/ directly. One volume per service keeps each key in
# its own container.
set -eu
uid=65532
status=0
for dir in /out/*/; do
  id=$(basename "$dir")
  missing=0
  for f in ca.pem "$id.pem" "$id-key.pem"; do
    if [ ! -f "/in/$f" ]; then
      echo "certs/$f is missing: run make certs" >&2
      missing=1
    fi
  done
  if [ "$missing" -ne 0 ]; then
    status=1
    continue
  fi
  rm -f "$dir"*.pem
  install -m 0444 -o "$uid" -g "$uid" /in/ca.pem "/in/$id.pem" "$dir"
  install -m 0400 -o "$uid" -g "$uid" "/in/$id-key.pem" "$dir"
  echo "installed certs/$id.pem, certs/$id-key.pem and certs/ca.pem for $id"
done
exit "$status"
