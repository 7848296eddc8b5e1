#!/usr/bin/env bash
# Creates .venv from Python 3.10 and installs the locked packages. Idempotent: a stamp file records the
# hash of the lock file, so a second run with an unchanged lock does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv

ensure_debian_packages() {
  local missing=()
  while read -r package command _; do
    case "$package" in ''|'#'*) continue ;; esac
    if [ "$command" = "-" ]; then  # a library: ask the package manager
      dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    else
      command -v "$command" >/dev/null 2>&1 || missing+=("$package")
    fi
  done < infra/debian-packages.txt
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages: ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
      >/tmp/cleanroom-apt.log 2>&1 || { cat /tmp/cleanroom-apt.log >&2; echo "error: apt-get failed" >&2; exit 2; }
  else
    echo "error: missing Debian packages: ${missing[*]}; fix: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
}
ensure_debian_packages
STAMP="$VENV/.lock-hash"
want_hash=$(cat requirements.lock requirements-data.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_hash" ]; then
  exit 0
fi

find_python310() {
  if [ -n "${CLEANROOM_PYTHON:-}" ]; then echo "$CLEANROOM_PYTHON"; return; fi
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null; then
    command -v python3.10; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.10*/bin/python3.10; do
      [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
  fi
  for candidate in "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
}

PY=$(find_python310 || true)
if [ -z "$PY" ]; then
  cat >&2 <<'MSG'
error: Python 3.10 was not found.
  TF Encrypted 0.9.1 ships its secure-randomness ops for TensorFlow 2.9.1 only, which needs Python 3.10.
  fix: install it (for example `pyenv install 3.10.13`, or `apt-get install python3.10 python3.10-venv`),
       or point CLEANROOM_PYTHON at a python3.10 binary, then run the make target again.
MSG
  exit 2
fi

echo "==> creating $VENV with $PY"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3" 2>&1 | { grep -v "is ignored: it is neither" || true; }
echo "==> installing locked packages (first run downloads about 700 MB)"
"$VENV/bin/python" -m pip install --quiet --no-deps -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . >"$VENV/editable.log" 2>&1 \
  || { cat "$VENV/editable.log" >&2; exit 3; }
"$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check >&2; exit 3; }
# Data-only packages last: their undeclared-for-us dependencies would fail `pip check` by design.
"$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-data.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
echo "$want_hash" > "$STAMP"
echo "==> environment ready"
