"""The print provider's report on a letter (`POST /v1/print-provider/letters/{letter_id}/status`).

IAM-authorised in template.yaml: only the print provider's role reaches it, and the service checks
that role again. The report resumes the letter's workflow.
"""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.api import BODY_PROBLEMS, create_resolver, handle, responses
from minid.api.letters import PrintStatusReport
from minid.domain.letters.ports import PrintReport, ReportedStatus
from minid.domain.letters.printing import PrintReports
from minid.domain.random import UUID4_PATTERN

logger = observability.logger()
app = create_resolver()


@cache
def services() -> PrintReports:
    return wiring.print_callback(os.environ)


@app.post(
    "/v1/print-provider/letters/<letter_id>/status",
    status_code=204,
    summary="Report a letter posted, or failed (print provider only, IAM-signed)",
    tags=["Print provider"],
    operation_id="reportPrintStatus",
    responses=responses(204, "The report is taken", *BODY_PROBLEMS, 404, 409, 503),
    security=[{"sigv4": []}],
)
def report_print_status(
    letter_id: Annotated[str, Path(pattern=UUID4_PATTERN, description="The letter id from the print job")],
    report: PrintStatusReport,
) -> Response[None]:
    caller = app.current_event.request_context.authorizer.iam.user_arn
    services().report(letter_id, PrintReport(ReportedStatus(report.status), report.reason), caller_arn=caller)
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)


coldstart.loaded()
