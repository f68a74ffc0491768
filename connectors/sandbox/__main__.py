"""python -m connectors.sandbox [--host 127.0.0.1] [--port 8090]"""

from __future__ import annotations

import argparse

from connectors.sandbox.server import DEFAULT_PORT, serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault-injection RNG")
    args = parser.parse_args()
    serve(args.host, args.port, args.seed)
