#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust auth, database "test") and Redis (127.0.0.1:6379)
# are running for the integration tests: start them if they are installed but stopped, install
# them from Debian's packages if they are missing. Idempotent; prints what it did.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "ensure-services: installing postgresql"
    apt_install postgresql
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ ! -d "/etc/postgresql/$ver/main" ]; then as_root pg_createcluster "$ver" main >/dev/null; fi
  # Trust auth on loopback, as the development machines have it.
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if ! grep -q "portcullis-trust" "$hba"; then
    as_root sh -c "printf '# portcullis-trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust\n' | cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
  fi
  echo "ensure-services: starting postgresql $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  for _ in $(seq 50); do port_open 5432 && break; sleep 0.2; done
fi
if command -v psql >/dev/null 2>&1; then
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" 2>/dev/null || true
  fi
fi

if ! port_open 6379; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-services: installing redis-server"
    apt_install redis-server
  fi
  echo "ensure-services: starting redis"
  mkdir -p /tmp/portcullis-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/portcullis-redis --logfile /tmp/portcullis-redis/redis.log
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.2; done
fi

port_open 5432 && port_open 6379 && echo "ensure-services: postgresql and redis are up"
