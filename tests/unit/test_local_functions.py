"""The local stack's functions (local/functions.py): what it does not do as Lambda does, it tells."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.functions import LambdaFunction
from local.template import FunctionSpec


def test_a_function_that_runs_past_its_timeout_is_told(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Lambda would stop it; the local stack lets it finish (its writes half made would be no test's
    ground), and says so: a handler that outgrew its timeout shows in `make run`'s and the tests' logs."""
    (tmp_path / "app.py").write_text(
        "import time\n\ndef lambda_handler(event, context):\n    time.sleep(event['sleep'])\n    return event\n"
    )
    slow = LambdaFunction(FunctionSpec("Slow", tmp_path, "app.lambda_handler", {"Timeout": 1}), "stack-slow")
    assert slow.invoke({"sleep": 1.1}) == {"sleep": 1.1}
    (told,) = [r for r in caplog.records if r.name == "local.functions"]
    assert "past its 1 s timeout" in told.getMessage()
    caplog.clear()
    assert slow.invoke({"sleep": 0.1}, seconds_left=0) == {"sleep": 0.1}  # a test's own time (0: none left): not told
    assert not [r for r in caplog.records if r.name == "local.functions"]
