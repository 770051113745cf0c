"""Health: liveness of the API, and the problem+json answer for every route the API does not have.

Besides `GET /v1/health`, this function takes the HTTP API's `$default` route, so that an unknown
path or method is answered with a 404 problem rather than API Gateway's own plain body; and a browser's
CORS preflight (OPTIONS), which the `$default` route takes as it takes every method, with 204.
"""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability
from minid.api import create_resolver, handle, responses
from minid.api.models import HealthStatus
from minid.api.resolver import SECURITY_HEADERS

logger = observability.logger()
app = create_resolver()


@app.get(
    "/v1/health",
    summary="Liveness of the API",
    tags=["Health"],
    operation_id="getHealth",
    responses=responses(200, "The API answers"),
)
def get_health() -> HealthStatus:
    return HealthStatus(status="ok")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("requestContext", {}).get("http", {}).get("method") == "OPTIONS":
        # A preflight, whatever its path: the $default route catches OPTIONS too (API Gateway's docs), and a
        # 404 would fail it; API Gateway adds the API's CORS headers to this answer, for an allowed origin.
        return {"statusCode": 204, "headers": dict(SECURITY_HEADERS), "body": ""}
    return handle(app, event, context)


coldstart.loaded()
