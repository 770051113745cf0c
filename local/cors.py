"""The HTTP API's CORS configuration (`CorsConfiguration` of template.yaml's HttpApi), as API Gateway
applies it: it answers a browser's preflight (an OPTIONS with `Origin` and `Access-Control-Request-Method`)
itself where no route takes it, and to an answer for a request with an allowed `Origin` adds the origin
and what the configuration allows or exposes, ignoring any CORS header of the function's own
(docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html). No library applies an API
Gateway configuration to a request: a few lines here, so that the local stack answers browsers as AWS does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.gateway import HttpRequest, HttpResponse

_CORS_HEADER = "access-control-"


@dataclass(frozen=True)
class Cors:
    allow_origins: frozenset[str] = frozenset()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def of(cls, configuration: Mapping[str, Any] | None) -> Cors | None:
        """From the template's configuration, its intrinsic functions resolved (None: no CORS)."""
        if not configuration:
            return None
        return cls(
            allow_origins=frozenset(configuration.get("AllowOrigins", ())),
            allow_methods=tuple(configuration.get("AllowMethods", ())),
            allow_headers=tuple(configuration.get("AllowHeaders", ())),
            expose_headers=tuple(configuration.get("ExposeHeaders", ())),
            max_age=configuration.get("MaxAge"),
            allow_credentials=bool(configuration.get("AllowCredentials", False)),
        )

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins

    @staticmethod
    def is_preflight(request: HttpRequest) -> bool:
        return (
            request.method == "OPTIONS"
            and bool(request.header("origin"))
            and bool(request.header("access-control-request-method"))
        )

    def preflight(self) -> HttpResponse:
        """API Gateway's own answer to a preflight no route takes (204). (The template's `$default` route
        takes every method, OPTIONS too, as AWS documents: its function answers the preflight, and
        `applied` marks that answer.)"""
        from local.gateway import HttpResponse  # noqa: PLC0415  (the gateway imports this module)

        return HttpResponse(204)

    def applied(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """The answer with the function's CORS headers taken out, and the configuration's put in for an
        allowed origin: for a preflight, the methods, headers and age allowed; else the headers exposed.
        To an origin not allowed it says nothing of CORS, and the browser refuses what it asked for."""
        headers = [(name, value) for name, value in response.headers if not name.lower().startswith(_CORS_HEADER)]
        origin = request.header("origin")
        if origin and self.allows(origin):
            headers.append(("Access-Control-Allow-Origin", origin))
            if self.is_preflight(request):
                headers.append(("Access-Control-Allow-Methods", ",".join(self.allow_methods)))
                headers.append(("Access-Control-Allow-Headers", ",".join(self.allow_headers)))
                if self.max_age is not None:
                    headers.append(("Access-Control-Max-Age", str(self.max_age)))
            elif self.expose_headers:
                headers.append(("Access-Control-Expose-Headers", ",".join(self.expose_headers)))
            headers += self._credentials()
        return replace(response, headers=headers)

    def _credentials(self) -> list[tuple[str, str]]:
        return [("Access-Control-Allow-Credentials", "true")] if self.allow_credentials else []
