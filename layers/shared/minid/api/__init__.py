"""The HTTP edge shared by every function: the resolver, problem details, and response headers.

Handlers (functions/*/app.py) build their resolver with `create_resolver()`, declare typed routes,
call one domain service each, and hand events to `handle()`.
"""

from minid.api.models import MAX_BODY_BYTES
from minid.api.problems import BODY_PROBLEMS, Problem, responses
from minid.api.resolver import NO_SUCH_ROUTE, bearer_token, client_address, create_resolver, handle

__all__ = [
    "BODY_PROBLEMS",
    "MAX_BODY_BYTES",
    "NO_SUCH_ROUTE",
    "Problem",
    "bearer_token",
    "client_address",
    "create_resolver",
    "handle",
    "responses",
]
