#!/usr/bin/env bash
# Make sure PostgreSQL and Redis listen on 127.0.0.1: start them when installed but stopped,
# install them from Debian packages when missing. Safe to run when both are already up.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  if ! pg_up; then
    echo "services: starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Trust local TCP connections, as the test fixtures connect as `postgres` without password.
    if ! grep -q "connector-trust" "$hba"; then
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust # connector-trust\nhost all all ::1/128 trust # connector-trust\nlocal all all trust # connector-trust' "$hba"
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 60); do pg_up && return 0; sleep 0.5; done
  echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: installing Redis"
    apt_install redis-server
  fi
  if ! redis_up; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || \
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
  for _ in $(seq 1 40); do redis_up && return 0; sleep 0.25; done
  echo "services: Redis did not come up on 127.0.0.1:6379" >&2
  return 1
}

# The browser test drives Debian's chromium through Playwright (no downloaded browser build).
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo "services: installing chromium"
    apt_install chromium
  fi
}

ensure_postgres
ensure_redis
ensure_chromium
echo "services: PostgreSQL, Redis and chromium are up"
