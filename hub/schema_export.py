"""Write docs/envelope.schema.json from the EventEnvelope model: `python -m hub.schema_export`."""

from __future__ import annotations

import json

from hub.envelope import envelope_json_schema
from hub.settings import PROJECT_ROOT


def main() -> None:
    target = PROJECT_ROOT / "docs" / "envelope.schema.json"
    target.write_text(json.dumps(envelope_json_schema(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
