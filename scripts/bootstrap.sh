#!/usr/bin/env bash
# Make this machine ready for PayOps Console: system packages, RabbitMQ and Redis.
# Idempotent: does nothing for what is already there. Installs with apt-get when
# run as root (or with sudo) on Debian/Ubuntu; otherwise says what is missing.
set -euo pipefail

AMQP_PORT=${PAYOPS_BOOTSTRAP_AMQP_PORT:-5672}
REDIS_PORT=${PAYOPS_BOOTSTRAP_REDIS_PORT:-6379}

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { log "apt-get not found; install by hand: $*"; return 1; }
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # name port seconds
  local i
  for ((i = 0; i < $3 * 4; i++)); do
    port_open "$2" && return 0
    sleep 0.25
  done
  log "$1 did not come up on port $2 within $3 s"
  return 1
}

ensure_python() {
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
  fi
}

# Shared libraries the PySide6 wheels load even on the offscreen platform,
# plus the xcb ones a real desktop session needs, and Xvfb: one test runs the
# window under a real X server (X11 text fields claim keys offscreen's do not).
QT_LIBS=(libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0
         libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
         libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0
         libxcb-image0 fonts-dejavu-core xvfb xauth)
ensure_qt_libs() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=() pkg
  for pkg in "${QT_LIBS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}" || log "could not install Qt libraries: ${missing[*]}"
  fi
}

ensure_redis() {
  port_open "$REDIS_PORT" && return 0
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  wait_port Redis "$REDIS_PORT" 20
}

ensure_rabbitmq() {
  port_open "$AMQP_PORT" && return 0
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
    # Debian's package may start it through systemd; give it a moment.
    wait_port RabbitMQ "$AMQP_PORT" 30 2>/dev/null && return 0
  fi
  log "starting rabbitmq-server"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || rabbitmq-server -detached
  wait_port RabbitMQ "$AMQP_PORT" 90
}

case "${1:-all}" in
  system) ensure_python; ensure_qt_libs ;;
  services) ensure_redis; ensure_rabbitmq ;;
  all) ensure_python; ensure_qt_libs; ensure_redis; ensure_rabbitmq ;;
  *) echo "usage: $0 [all|system|services]" >&2; exit 2 ;;
esac
