"""An HTTP API (API Gateway v2) emulator: routes from template.yaml, payload 2.0 events, real handlers."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.aws import ACCOUNT_ID
from local.cors import Cors
from local.functions import Functions
from local.template import DEFAULT_ROUTE, Route

log = logging.getLogger("local.gateway")

API_ID = "local"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit; the API's is 16 KiB (see minid.api)
# The bodies an HTTP API hands a function as text; any other (none named, a form, a `+json` type, bytes
# that are not UTF-8) it hands base64-encoded, with isBase64Encoded. AWS documents no list: this is the
# one observed on real HTTP APIs (payload 2.0) by ministack's maintainers (ministackorg/ministack#766).
_TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})


def _sent_as_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str  # path and query, as on the request line
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path) or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @classmethod
    def json(cls, status: int, value: Any, content_type: str = "application/json") -> HttpResponse:
        body = json.dumps(value, ensure_ascii=False, indent=2).encode()
        return cls(status, body, [("Content-Type", f"{content_type}; charset=utf-8")])


LocalRoute = Callable[[HttpRequest, dict[str, str]], HttpResponse]


class Gateway:
    def __init__(
        self,
        routes: list[Route],
        functions: Functions,
        local_routes: list[tuple[str, Route, LocalRoute]] | None = None,
        iam_principals: dict[str, str] | None = None,
        cors: Cors | None = None,
    ) -> None:
        self.routes = routes
        self.cors = cors  # the API's CORS configuration: API Gateway's own answers to browsers
        self.functions = functions
        self.local_routes = local_routes or []
        # Who signs requests to IAM-authorised routes: access key id -> the caller's ARN. The signature
        # itself is not checked here; an unknown key is refused, as API Gateway refuses a bad signature.
        self.iam_principals = iam_principals or {}

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The answer, with API Gateway's `apigw-requestid` header: the id the event carries as
        requestContext.requestId, which the functions log as their correlation id (Powertools), so
        that the id a client reports finds the request's log lines."""
        request_id = new_request_id()
        if _shown(request.target) is UNPARSED:  # API Gateway's 400, not an error in the server
            return with_request_id(HttpResponse.json(400, {"message": "Bad Request"}), request_id)
        try:
            if (
                self.cors is not None
                and self.cors.is_preflight(request)
                and self.match("OPTIONS", request.path)[0] is None
            ):
                answer = self.cors.preflight()  # no route takes it: answered by API Gateway itself
            else:
                answer = self._answer(request, request_id)
            if self.cors is not None:
                answer = self.cors.applied(request, answer)
        except Exception:  # the function failed, or answered what API Gateway cannot map, or a local route
            # failed: API Gateway's 500, and the log has the trace
            log.error("%s failed:\n%s", self.route_key(request.method, request.path), traceback.format_exc())
            answer = HttpResponse.json(500, {"message": "Internal Server Error"})
        return with_request_id(answer, request_id)

    def route_key(self, method: str, path: str) -> str:
        """The route a request is taken by, as API Gateway's access log names it (`$context.routeKey`,
        template.yaml): the console never shows the path, whose ids (a login's, a reset's: three wrong
        codes on one end it) and whatever a client typed there the deployed logs never hold. A local
        route (`/_local/...`) by its own."""
        local = self._local(method, path)
        if local is not None:
            return local[0].key
        route, _ = self.match(method, path)
        return route.key if route is not None else "-"

    def _local(self, method: str, path: str) -> tuple[Route, LocalRoute, dict[str, str]] | None:
        """The local route (`/_local/...`) taking the request, how, and its path's parameters; or None."""
        for local_method, local_route, serve in self.local_routes:
            local_match = local_route.pattern.fullmatch(path)
            if local_match and method == local_method:
                return local_route, serve, local_match.groupdict()
        return None

    def _answer(self, request: HttpRequest, request_id: str) -> HttpResponse:
        local = self._local(request.method, request.path)
        if local is not None:
            _, serve, parameters = local
            return serve(request, parameters)
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return HttpResponse.json(413, {"message": "Request Entity Too Large"})
        route, parameters = self.match(request.method, request.path)
        if route is None:
            return HttpResponse.json(404, {"message": "Not Found"})
        caller = self._iam_caller(request) if route.iam_auth else None
        if route.iam_auth and caller is None:
            return HttpResponse.json(403, {"message": "Forbidden"})
        event = payload_v2_event(request, route, parameters, caller, request_id=request_id)
        return http_response(self.functions.by_logical_id[route.function].invoke(event))

    def _iam_caller(self, request: HttpRequest) -> str | None:
        authorization = request.header("authorization") or ""
        found = re.match(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/", authorization)
        return self.iam_principals.get(found.group(1)) if found else None

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if route.path == DEFAULT_ROUTE:
                return route, {}
            if route.method not in (method, "ANY"):
                continue
            match = route.pattern.fullmatch(path)
            if match:
                return route, match.groupdict()
        return None, {}


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def with_request_id(response: HttpResponse, request_id: str) -> HttpResponse:
    return replace(response, headers=[*response.headers, ("apigw-requestid", request_id)])


def payload_v2_event(
    request: HttpRequest,
    route: Route,
    path_parameters: dict[str, str],
    iam_caller: str | None = None,
    *,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda integration with payload format 2.0."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "https")
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    request_id = request_id or new_request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": headers.get("host", "localhost").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if iam_caller is not None:
        access_key = re.search(r"Credential=([^/,\s]+)/", request.header("authorization") or "")
        event["requestContext"]["authorizer"] = {
            "iam": {
                "accessKey": access_key.group(1) if access_key else "",
                "accountId": ACCOUNT_ID,
                "callerId": iam_caller.rsplit("/", 1)[-1],
                "principalOrgId": None,
                "userArn": iam_caller,
                "userId": iam_caller.rsplit("/", 1)[-1],
            }
        }
    if request.body:
        try:
            text = request.body.decode("utf-8") if _sent_as_text(headers.get("content-type", "")) else None
        except UnicodeDecodeError:
            text = None
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    return event


def http_response(result: Any) -> HttpResponse:
    """What API Gateway makes of a payload 2.0 result, including its guess for a bare value."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return HttpResponse(200, json.dumps(result).encode(), [("Content-Type", "application/json")])
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", c) for c in result.get("cookies") or []]
    return HttpResponse(int(result["statusCode"]), data, headers)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        started = time.perf_counter()
        body = self._body()
        if isinstance(body, int):
            # Refused unread: where a body ends is unknown, so is where the next request starts (the
            # connection is closed), and one over API Gateway's limit is not taken into memory first.
            refusal = HttpResponse.json(body, {"message": _REFUSALS[body]})
            self.close_connection = True
            log.info("%s -> %d (the body's length)", self._route(), refusal.status)
            self._send(with_request_id(refusal, new_request_id()))
            return
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        response = self.server.gateway.handle(request)
        elapsed = (time.perf_counter() - started) * 1000
        # before it is sent: a client that has its answer finds it told (the console in the order answered)
        log.info("%s -> %d (%.0f ms)", self._route(), response.status, elapsed)
        self._send(response)

    def _route(self) -> str:
        """The request's route, for the console (Gateway.route_key); never its path."""
        path = _shown(self.path)
        return path if path is UNPARSED else self.server.gateway.route_key(self.command, unquote(path) or "/")

    def _body(self) -> bytes | int:
        """The request's body, or the status it is refused with (400: where it ends is unknown; 413:
        longer than API Gateway takes)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _chunked_body(self.rfile, MAX_PAYLOAD_BYTES)
        length = _content_length(self.headers.get("Content-Length"))
        if length is None or length > MAX_PAYLOAD_BYTES:
            return 400 if length is None else 413
        return self.rfile.read(length) if length else b""

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def __getattr__(self, name: str) -> Any:
        """`do_<METHOD>` for every method: each reaches the gateway, as it reaches API Gateway's routes."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by _serve, without query strings."""


UNPARSED = "(a target that does not parse)"


def _shown(target: str) -> str:
    """The target's path (for the console: without its query string), or UNPARSED."""
    try:
        return urlsplit(target).path
    except ValueError:
        return UNPARSED


_REFUSALS = {400: "Bad Request", 413: "Request Entity Too Large"}


def _chunked_body(stream: Any, limit: int) -> bytes | int:
    """A body sent in chunks (Transfer-Encoding: chunked, as API Gateway takes it): the body, 413 past
    `limit`, or 400 where it is malformed (where it ends is unknown: the connection is closed)."""
    body = bytearray()
    while True:
        line = stream.readline(1024).split(b";", 1)[0].strip()  # the size, in hex; extensions ignored
        if not line or not all(c in b"0123456789abcdefABCDEF" for c in line):
            return 400
        size = int(line, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            return 413
        chunk = stream.read(size)
        if len(chunk) != size or stream.read(2) != b"\r\n":
            return 400
        body += chunk
    while (trailer := stream.readline(8192)) not in (b"\r\n", b"\n", b""):  # trailers, to the blank line
        if len(trailer) >= 8192:
            return 400
    return bytes(body)


def _content_length(value: str | None) -> int | None:
    """The body's length in bytes (0 without the header), or None where the header is no length: a
    sign, a space within, or any character but ASCII digits (which `int` would take, and a negative
    length would have the read wait for the connection's end)."""
    if value is None:
        return 0
    digits = value.strip()
    return int(digits) if digits.isascii() and digits.isdigit() else None


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
