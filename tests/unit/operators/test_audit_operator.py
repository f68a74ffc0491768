"""Who an audit entry names: --operator, else CARINHO_OPERATOR (through the settings), else the OS
account the command runs as — taken from the process's uid, never from $USER or $LOGNAME, which anyone
can set on the command line."""

from __future__ import annotations

import os
import pwd

import pytest

from operators.audit import os_user, resolve_operator

ACCOUNT = pwd.getpwuid(os.getuid()).pw_name


def test_the_os_user_is_the_process_account_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "someone-else")
    assert ACCOUNT != "someone-else"
    assert os_user() == ACCOUNT
    assert resolve_operator(None, None) == ACCOUNT
    assert resolve_operator("  ", "") == ACCOUNT  # blank names fall through too


def test_explicit_operator_then_configured_one() -> None:
    assert resolve_operator(" ana ", "bruno") == "ana"
    assert resolve_operator(None, "bruno") == "bruno"
