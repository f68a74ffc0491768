"""deploy/local/python.sh: which interpreter `make venv` builds .venv with, and that a virtualenv made
by another interpreter is built again (README, "Prerequisites")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PYTHON_SH = ROOT / "deploy" / "local" / "python.sh"


def run(*args: str, **env: str) -> str:
    done = subprocess.run(
        [str(PYTHON_SH), *args], env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout


def made_by(venv: Path) -> str:
    lines = (venv / "pyvenv.cfg").read_text().splitlines()
    return next(line.split("=", 1)[1].strip() for line in lines if line.startswith("executable"))


def test_carinho_python_chooses_the_interpreter() -> None:
    assert run(CARINHO_PYTHON="/opt/some/python3").strip() == "/opt/some/python3"


def makes_virtualenvs(python: str) -> bool:
    """3.11+ with venv and ensurepip: what the script asks of the distribution's interpreter."""
    check = "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"
    return Path(python).exists() and subprocess.run([python, "-c", check], capture_output=True).returncode == 0


def test_without_it_the_distributions_python_when_it_can_make_virtualenvs() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARINHO_PYTHON"}
    chosen = subprocess.run([str(PYTHON_SH)], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert chosen == ("/usr/bin/python3" if makes_virtualenvs("/usr/bin/python3") else "python3")


def test_a_virtualenv_is_kept_when_its_interpreter_made_it_and_built_again_when_another_did(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = os.path.realpath(sys.executable)  # a virtualenv's python links to the interpreter that made it
    run("venv", str(venv), python)
    assert os.path.realpath(made_by(venv)) == python
    marker = venv / "kept"
    marker.write_text("")
    run("venv", str(venv), python)
    assert marker.exists()  # same interpreter: left as it was

    cfg = venv / "pyvenv.cfg"  # as if another interpreter had made it
    cfg.write_text(cfg.read_text().replace(made_by(venv), "/opt/another/python3.11"))
    said = run("venv", str(venv), python)
    assert "building it again" in said
    assert not marker.exists() and os.path.realpath(made_by(venv)) == python
