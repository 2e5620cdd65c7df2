"""Generate sample data (same as `./dev run seed`).

Run from the repository root: `./dev run scripts/generate_sample_data.py --help`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics_service.devtools.sample_data import main

if __name__ == "__main__":
    raise SystemExit(main())
