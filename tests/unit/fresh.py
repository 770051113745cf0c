"""What a piece of code loads, run in a fresh interpreter (this one's, with the project on its path)."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_loaded(code: str, *packages: str) -> list[str]:
    """The modules of these top-level packages loaded once `code` has run, sorted."""
    report = (
        f"\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))\n"
    )
    done = subprocess.run(  # noqa: S603  (our own code, in this interpreter)
        [sys.executable, "-c", code + report], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded
