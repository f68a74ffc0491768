"""`carinho ingress`: run the HTTP ingress in the foreground (settings from CARINHO_* variables)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("ingress", help="run the HTTP ingress (CARINHO_HOST/CARINHO_PORT, default 127.0.0.1:8080)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ingress.app import main

    main()
    return 0
