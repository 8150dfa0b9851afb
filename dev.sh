#!/usr/bin/env bash
# OneTrip one-command set-up.
#   ./dev.sh demo   — install everything, load the synthetic demo district, serve on http://127.0.0.1:8000
#   ./dev.sh test   — install everything (incl. test tools and Debian's chromium), run ruff, the import
#                     contracts and the whole
#                     test suite on SQLite and PostgreSQL
# Options pass through: ./dev.sh demo --residents 5000 --port 8080 ; ./dev.sh test -k fhir
set -euo pipefail
cd "$(dirname "$0")"

cmd="${1:-}"
shift || true

find_python() {
  for p in "${ONETRIP_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      echo "$p"; return 0
    fi
  done
  echo "需要 Python ≥ 3.11 / Python 3.11 or newer is required (apt-get install python3)" >&2
  exit 2
}

ensure_venv() {
  local extra="$1"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  local stamp=".venv/.onetrip-installed-${extra:-base}"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> 安装依赖 / installing Python dependencies${extra:+ [$extra]}"
    .venv/bin/python -m pip install --quiet --upgrade pip
    if [ -n "$extra" ]; then
      .venv/bin/python -m pip install --quiet -e ".[$extra]"
    else
      .venv/bin/python -m pip install --quiet -e .
    fi
    echo "$want" > "$stamp"
  fi
}

ensure_os_packages() {
  # The browser tests drive Debian's chromium (no browser download); CJK fonts make Chinese readable
  # in screenshots. Installed only when missing, and only where apt-get can run as root.
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  fc-list 2>/dev/null | grep -qi "noto sans cjk\|wqy\|noto serif cjk" || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> 安装系统软件包 / installing OS packages: ${missing[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "提示 / note: please install ${missing[*]} (apt-get install ${missing[*]}); browser tests are skipped without chromium" >&2
    fi
  fi
}

ensure_postgres() {
  # Start an installed but stopped local cluster; tests skip (or, with CI=true, fail) when none answers.
  local url="${ONETRIP_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
  if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -d "$url" 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
      for v in /etc/postgresql/*; do
        [ -d "$v" ] && pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start 2>/dev/null || true
      done
    fi
  fi
}

case "$cmd" in
  demo)
    ensure_venv ""
    exec .venv/bin/onetrip demo --serve "$@"
    ;;
  test)
    ensure_venv "test"
    ensure_os_packages
    ensure_postgres
    echo "==> ruff"
    .venv/bin/ruff check src tests bench
    echo "==> import contracts (lint-imports: layers and independent domains, docs/architecture.md)"
    .venv/bin/lint-imports --no-logo
    echo "==> pytest (SQLite + PostgreSQL), one worker per core (pytest-xdist; pass -n 0 for one process)"
    set +e
    .venv/bin/python -m pytest -n auto --maxprocesses 4 "$@"
    rc=$?
    set -e
    if [ "$rc" = "5" ]; then echo "no tests were collected" >&2; exit 1; fi
    exit "$rc"
    ;;
  *)
    echo "usage: ./dev.sh demo [--residents N] [--seed S] [--port P]  |  ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
