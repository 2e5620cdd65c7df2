"""One-shot setup for docker-compose: the kibana_system password, then index templates.

Runs in the `setup` service once Elasticsearch is healthy; idempotent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics_service.cli import main
from analytics_service.config import Settings
from analytics_service.es.client import make_sync_client


def set_kibana_password() -> None:
    password = os.environ["KIBANA_SYSTEM_PASSWORD"]
    es = make_sync_client(Settings())
    es.security.change_password(username="kibana_system", password=password)
    print("kibana_system password set")


if __name__ == "__main__":
    set_kibana_password()
    raise SystemExit(main(["setup"]))
