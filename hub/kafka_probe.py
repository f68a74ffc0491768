"""Wait until a Kafka cluster answers a metadata request with the expected number of brokers.

Used by deploy/local/kafka.sh and the test fixtures: `python -m hub.kafka_probe --brokers 3`.
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka.admin import AdminClient

from hub.kafka_config import admin_config


def brokers_answering(bootstrap: str, timeout: float = 2.0) -> int:
    """Number of brokers in a fresh metadata response (0 when the cluster does not answer)."""
    admin = AdminClient(admin_config(bootstrap, **{"log_level": 0, "logger": _Silent()}))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return 0
    return len(metadata.brokers)


class _Silent:
    """librdkafka logs connection refusals while the broker boots; they are expected here."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None


def wait_for_brokers(bootstrap: str, brokers: int = 1, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if brokers_answering(bootstrap) >= brokers:
            return True
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--brokers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    ok = wait_for_brokers(args.bootstrap, args.brokers, args.timeout)
    if not ok:
        print(f"no metadata with {args.brokers} broker(s) from {args.bootstrap} in {args.timeout}s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
