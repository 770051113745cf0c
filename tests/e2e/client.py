"""A small HTTP client for the e2e tests (the standard library's, so nothing hides what is sent)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Every JSON body sent and received, and every bearer token: what must never reach the logs.
        self.exchanges: list[Any] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        data = json.dumps(json_body).encode() if json_body is not None else body
        request_headers = {"Content-Type": "application/json"} if data is not None else {}
        request_headers.update(headers or {})
        self.exchanges.append(json_body)
        if (authorization := request_headers.get("Authorization", "")).startswith("Bearer "):
            self.exchanges.append({"access_token": authorization.removeprefix("Bearer ")})
        request = urllib.request.Request(  # noqa: S310  (the local stack's own http URL)
            self.base_url + path, data=data, method=method, headers=request_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer = ApiResponse(response.status, _headers(response.headers), response.read())
        except urllib.error.HTTPError as error:
            answer = ApiResponse(error.code, _headers(error.headers), error.read())
        if answer.content_type.startswith("application/json") and path.startswith("/v1/"):
            self.exchanges.append(answer.json())
        return answer

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)


def _headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
