#!/usr/bin/env bash
# The Python interpreter the project's virtualenv is built with (make venv), and the virtualenv itself.
#
#   deploy/local/python.sh              print the interpreter to use
#   deploy/local/python.sh venv DIR PY  make DIR a virtualenv of PY: create it when missing, build it
#                                       again when another interpreter made it
#
# Which interpreter: $CARINHO_PYTHON when set; else the distribution's /usr/bin/python3 when it is
# 3.11 or newer and can make virtualenvs; else `python3` from PATH.
# Why the distribution's: Debian builds its CPython with profile-guided and link-time optimization
# and links the interpreter statically (measured here; other distributions were not), while a default
# pyenv/asdf build from source (no --enable-optimizations, --enable-shared) is slower: the processors'
# worker spent 7-15 % more CPU per routed event on it, and pure-Python code ran 1.1-2.2x slower
# (docs/benchmarks.md, twenty-first session). CARINHO_PYTHON=python3 keeps PATH's interpreter.
set -euo pipefail

usable() { # interpreter: 3.11+ with venv and ensurepip (Debian splits them into python3-venv)
  [ -x "$1" ] && "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

pick() {
  if [ -n "${CARINHO_PYTHON:-}" ]; then
    echo "$CARINHO_PYTHON"
  elif usable /usr/bin/python3; then
    echo /usr/bin/python3
  else
    echo python3
  fi
}

made_by() { # venv dir -> the interpreter that made it (pyvenv.cfg's `executable`), if it says
  sed -n 's/^executable *= *//p' "$1/pyvenv.cfg" 2>/dev/null | head -n 1
}

ensure_venv() { # dir interpreter
  local dir="$1" python="$2" wanted had
  # The interpreter's own path (a pyenv shim is a script that runs another program).
  wanted="$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')" ||
    { echo "python.sh: cannot run $python" >&2; exit 1; }
  if [ -x "$dir/bin/python" ]; then
    had="$(made_by "$dir")"
    if [ -z "$had" ] || [ "$(realpath -m "$had")" = "$wanted" ]; then
      return 0
    fi
    echo "python.sh: $dir was made by $had; building it again with $wanted"
    rm -rf "$dir"
  fi
  "$python" -m venv "$dir"
}

case "${1:-pick}" in
  pick) pick ;;
  venv) ensure_venv "$2" "$3" ;;
  *) echo "usage: $0 [pick | venv DIR PYTHON]" >&2; exit 2 ;;
esac
