"""The local gateway's HTTP server as a client meets it, with a function of the test's own behind it:
what API Gateway's front does before any function runs, and what it tells the client about a request."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext as PowertoolsLambdaContext

from local.functions import Functions, LambdaContext, LambdaFunction
from local.gateway import MAX_PAYLOAD_BYTES, Gateway, HttpRequest, LocalHttpServer, payload_v2_event
from local.template import Route

logger = Logger(service="gateway-test")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def _echo(event: dict[str, Any], context: PowertoolsLambdaContext) -> dict[str, Any]:
    """Answers with what it was sent and with the correlation id its logs carry, taken by Powertools
    from the event as the API's functions take it."""
    body = {"correlation_id": logger.get_correlation_id(), "body": event.get("body")}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


class _EchoFunction:
    def invoke(self, event: Any, seconds_left: int | None = None) -> Any:
        return _echo(event, LambdaContext("echo", 128, seconds_left or 3))


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    functions = Functions([])
    functions.by_logical_id["EchoFunction"] = cast("LambdaFunction", _EchoFunction())
    gateway = Gateway([Route("ANY", "/echo", "EchoFunction")], functions)
    with LocalHttpServer(("127.0.0.1", 0), gateway) as http_server:
        thread = threading.Thread(target=http_server.serve_forever, daemon=True)
        thread.start()
        yield "127.0.0.1", http_server.server_address[1]
        http_server.shutdown()
        thread.join()


def _exchange(address: tuple[str, int], request: bytes) -> tuple[http.client.HTTPResponse, bytes, socket.socket]:
    """The request sent as it is (http.client would not send a malformed Content-Length), and the answer.
    A server that waits for a body that never comes fails the test by the socket's timeout."""
    connection = socket.create_connection(address, timeout=5)
    connection.sendall(request)
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response, response.read(), connection


def test_the_request_id_header_is_the_event_s_request_id_the_functions_log_with(server: tuple[str, int]) -> None:
    """On AWS `apigw-requestid` is requestContext.requestId, which the functions' Powertools logs carry
    as the correlation id: what a client reports finds the request's log lines."""
    seen = set()
    for _ in range(3):
        connection = http.client.HTTPConnection(*server, timeout=5)
        connection.request("GET", "/echo")
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
        assert response.status == 200
        assert answer["correlation_id"]
        assert response.getheader("apigw-requestid") == answer["correlation_id"]
        seen.add(answer["correlation_id"])
    assert len(seen) == 3  # one per request


def test_a_request_that_reaches_no_function_has_a_request_id_too(server: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*server, timeout=5)
    connection.request("GET", "/no-such-route")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 404
    assert response.getheader("apigw-requestid")


def test_the_console_names_a_request_s_route_never_its_path(
    server: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """As API Gateway's access log ($context.routeKey): a path's ids (a login's, a reset's) and whatever a
    client typed there stay out of the console, as out of the deployed logs."""
    caplog.set_level(logging.INFO, logger="local.gateway")
    for path in ("/echo?number=18838417392", "/18838417392", "/v1/login/3f0c9a2e/verify"):
        connection = http.client.HTTPConnection(*server, timeout=5)
        connection.request("GET", path)
        connection.getresponse().read()
        connection.close()
    said = [r.getMessage() for r in caplog.records if r.name == "local.gateway"]
    assert [line.split(" (")[0] for line in said] == ["ANY /echo -> 200", "- -> 404", "- -> 404"]
    assert not [line for line in said if "18838417392" in line or "3f0c9a2e" in line]


@pytest.mark.parametrize("length", ["abc", "-1", "+3", "1_0", "3 3", "", "0x3", "3.0"])
def test_a_content_length_that_is_not_a_length_is_a_400(server: tuple[str, int], length: str) -> None:
    """Where the body ends is unknown: API Gateway's 400, and the connection closed (the next request
    would start nobody knows where). Not an error in the server, nor a wait for the connection's end."""
    request = f"POST /echo HTTP/1.1\r\nHost: local\r\nContent-Length: {length}\r\n\r\nabc".encode()
    response, body, connection = _exchange(server, request)
    with connection:
        assert response.status == 400
        assert json.loads(body) == {"message": "Bad Request"}
        assert response.getheader("apigw-requestid")
        assert response.getheader("Connection") == "close"
        assert connection.recv(1) == b""


def test_a_content_length_over_the_payload_limit_is_a_413_before_the_body_is_read(server: tuple[str, int]) -> None:
    request = f"POST /echo HTTP/1.1\r\nHost: local\r\nContent-Length: {MAX_PAYLOAD_BYTES + 1}\r\n\r\n".encode()
    response, body, connection = _exchange(server, request)
    with connection:
        assert response.status == 413
        assert json.loads(body) == {"message": "Request Entity Too Large"}
        assert connection.recv(1) == b""


def _bodies_echoed_twice(address: tuple[str, int], request: bytes) -> list[str]:
    """The request sent twice on one connection (kept for the next): the bodies the function was handed."""
    response, body, connection = _exchange(address, request)
    with connection:
        connection.sendall(request)
        second = http.client.HTTPResponse(connection)
        second.begin()
        assert (response.status, second.status) == (200, 200)
        return [json.loads(body)["body"], json.loads(second.read())["body"]]


def test_a_content_length_is_read_as_before(server: tuple[str, int]) -> None:
    """Spaces around the value are the header's, not the length's; the connection is kept for the next."""
    request = b"POST /echo HTTP/1.1\r\nHost: local\r\nContent-Type: text/plain\r\nContent-Length:  3 \r\n\r\nabc"
    assert _bodies_echoed_twice(server, request) == ["abc", "abc"]


def test_a_body_sent_in_chunks_is_handed_over_whole(server: tuple[str, int]) -> None:
    """API Gateway takes Transfer-Encoding: chunked (curl -T -, a streaming client): the body, not an
    empty one with its chunks read as the next request; the connection is kept for the next."""
    request = (
        b"POST /echo HTTP/1.1\r\nHost: local\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
    )
    assert _bodies_echoed_twice(server, request) == ["abcdefg", "abcdefg"]


@pytest.mark.parametrize(
    ("chunks", "status"),
    [(b"x\r\nabc\r\n0\r\n\r\n", 400), (b"3\r\nabcd0\r\n\r\n", 400), (f"{MAX_PAYLOAD_BYTES + 1:x}\r\n".encode(), 413)],
)
def test_a_body_in_chunks_that_are_not_chunks_or_too_large_is_refused(
    server: tuple[str, int], chunks: bytes, status: int
) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: local\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    response, _, connection = _exchange(server, request)
    with connection:
        assert response.status == status
        assert response.getheader("Connection") == "close"


def test_a_target_that_does_not_parse_is_a_400_not_a_dropped_connection(server: tuple[str, int]) -> None:
    response, body, connection = _exchange(server, b"GET http://[/echo HTTP/1.1\r\nHost: local\r\n\r\n")
    with connection:
        assert response.status == 400
        assert json.loads(body) == {"message": "Bad Request"}


@pytest.mark.parametrize(
    ("content_type", "as_text"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/plain", True),
        ("application/xml", True),
        ("application/javascript", True),
        (None, False),  # none named: base64, as a form is (what `curl -d` sends)
        ("application/x-www-form-urlencoded", False),
        ("application/merge-patch+json", False),
        ("application/octet-stream", False),
    ],
)
def test_a_body_is_handed_over_as_text_only_for_the_media_types_api_gateway_sends_as_text(
    content_type: str | None, as_text: bool
) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    request = HttpRequest("POST", "/echo", headers, b'{"a": 1}')
    event = payload_v2_event(request, Route("ANY", "/echo", "EchoFunction"), {})
    assert event["isBase64Encoded"] is not as_text
    assert (event["body"] if as_text else base64.b64decode(event["body"])) == ('{"a": 1}' if as_text else b'{"a": 1}')


def test_a_body_that_is_not_utf_8_is_base64_whatever_its_media_type() -> None:
    request = HttpRequest("POST", "/echo", [("Content-Type", "text/plain")], b"\xff\xfe")
    event = payload_v2_event(request, Route("ANY", "/echo", "EchoFunction"), {})
    assert (event["isBase64Encoded"], base64.b64decode(event["body"])) == (True, b"\xff\xfe")


class _BrokenFunction:
    def invoke(self, event: Any, seconds_left: int | None = None) -> Any:
        return {"statusCode": "not a status", "body": "x"}  # what API Gateway cannot map to a response


def test_a_function_s_answer_api_gateway_cannot_map_is_its_500_not_a_dropped_connection() -> None:
    functions = Functions([])
    functions.by_logical_id["BrokenFunction"] = cast("LambdaFunction", _BrokenFunction())
    gateway = Gateway([Route("ANY", "/broken", "BrokenFunction")], functions)
    answer = gateway.handle(HttpRequest("GET", "/broken", []))
    assert answer.status == 500
    assert json.loads(answer.body) == {"message": "Internal Server Error"}
    assert answer.header("apigw-requestid")


@pytest.mark.parametrize("stage", ["test", "prod"])
def test_make_run_runs_the_local_stage_only(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The local stack serves every code sent at /_local/outbox and seeds synthetic identity numbers (which
    prod refuses): `make run` with another stage is refused before anything starts, not run as local
    under another name. (The tests start one of another stage to hold that stage's rules.)"""
    from local.__main__ import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as refused:
        main(["--parameter-overrides", f"Stage={stage}"])
    assert refused.value.code == 2
    assert "runs as stage 'local'" in capsys.readouterr().err


def test_make_run_on_a_port_in_use_is_told_before_the_stack_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """Told as a usage error, not a traceback once the stack has been set up and started (seconds later,
    its pollers left running)."""
    from local.__main__ import main  # noqa: PLC0415

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as refused:
            main(["--port", str(port)])
    assert refused.value.code == 2
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in capsys.readouterr().err


def test_make_run_on_no_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from local.__main__ import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as refused:
        main(["--port", "70000"])
    assert refused.value.code == 2
    assert "70000 is not a port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("delay", "told"),
    [
        ("-1", "-1 is not a delay"),
        ("nan", "nan is not a delay"),
        ("inf", "inf is not a delay"),
        ("1e10", "1e10 is not a delay"),
        ("soon", "'soon' is not a number"),
    ],
)
def test_make_run_with_a_print_delay_that_is_no_delay_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], delay: str, told: str
) -> None:
    """The simulated provider sleeps it after taking a job: one time.sleep refuses (negative, not a number)
    would leave that letter untold, its workflow waiting the print timeout's days, with a traceback alone."""
    from local.__main__ import main  # noqa: PLC0415

    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(SystemExit) as refused:
        # (on a port in use: were the delay taken, the stack would stop there, not start and serve on)
        main(["--print-delay", delay, "--port", str(taken.getsockname()[1])])
    assert refused.value.code == 2
    assert told in capsys.readouterr().err
