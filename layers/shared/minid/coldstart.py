"""A function's cold start: no garbage collection while its handler module loads.

Loading a handler (boto3, Powertools, pydantic, the domain) makes some 90,000 objects the collector
tracks, nearly all of which live as long as the execution environment. The collector would go over
them again and again while they are made (30 to 40 ms of a cold start: `make bench` shows the login
function both ways), and once more, over all of them, soon after. So it is off while the module loads
(`loading`, the handler module's first statement), and on Lambda what the load made is then frozen
(`loaded`, its last): set aside in a generation the collector never visits, as CPython's documentation
advises for objects made once at start (gc.freeze).

Elsewhere (the tests and the local stack, which load a handler many times in one process, beside
garbage of their own) nothing is frozen: freezing would keep that garbage for good.
"""

from __future__ import annotations

import gc
import os


def loading() -> None:
    gc.disable()


def loaded() -> None:
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # set by Lambda in every execution environment
        gc.freeze()
    gc.enable()
