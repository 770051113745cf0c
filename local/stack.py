"""The local stack assembled: embedded AWS provisioned from the template, the functions, the seeded
population register, the outbox, and the gateway with its local-only routes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import boto3
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

from local.functions import Functions, LambdaFunction, apply_environment
from local.gateway import Gateway, HttpResponse, LocalRoute
from local.openapi import build_openapi
from local.outbox import Outbox
from local.population_seed import SeededPerson, generate_population
from local.provision import Stack, provision
from local.template import Route, Template
from minid.adapters.clock import SystemClock
from minid.adapters.population import DynamoDbPopulationRegister
from minid.adapters.secrets import load_pepper
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer
from minid.domain.pin_letters import letter_address, recipient_ineligibility
from minid.domain.time import today_in_norway

POPULATION_TABLE = "PopulationRegisterTable"  # logical ids in template.yaml
PEPPER = "PepperSecret"

# Only for the local stack: the functions' logs stay quiet about tracing and metrics they cannot send.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class LocalStack:
    session: boto3.Session
    template: Template
    stack: Stack
    functions: Functions
    outbox: Outbox
    population: list[SeededPerson]
    today: date
    _docs_cache: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, session: boto3.Session) -> LocalStack:
        template = Template.load()
        stack = provision(template, session)
        specs = template.functions()
        apply_environment(
            {"local": LOCAL_ENVIRONMENT} | {s.logical_id: stack.function_environment(s) for s in specs}
        )
        functions = Functions([LambdaFunction(spec, stack.function_name(spec)) for spec in specs])
        today = today_in_norway(SystemClock())
        population = generate_population(year=today.year)
        register = DynamoDbPopulationRegister(
            session.client("dynamodb"),
            stack.refs[POPULATION_TABLE],
            Keyer(load_pepper(session.client("secretsmanager"), stack.refs[PEPPER])),
        )
        register.put_many(
            (parse_identity_number(p.identity_number, allow_synthetic=True, today=today), p.person)
            for p in population
        )
        return cls(session, template, stack, functions, Outbox(), population, today)

    # ------------------------------------------------------------------ local-only routes
    def gateway(self) -> Gateway:
        local_routes: list[tuple[str, Route, LocalRoute]] = [
            ("GET", _local_route("/"), lambda r, p: HttpResponse(302, headers=[("Location", "/docs")])),
            ("GET", _local_route("/openapi.json"), lambda r, p: HttpResponse.json(200, self.openapi)),
            ("GET", _local_route("/docs"), lambda r, p: self._docs()),
            ("GET", _local_route("/_local/persons"), lambda r, p: HttpResponse.json(200, self.persons())),
            (
                "GET",
                _local_route("/_local/outbox"),
                lambda r, p: HttpResponse.json(200, self.outbox.snapshot()),
            ),
        ]
        return Gateway(self.template.routes(), self.functions, local_routes)

    @cached_property
    def openapi(self) -> dict[str, Any]:
        return build_openapi(self.template)

    def _docs(self) -> HttpResponse:
        if "html" not in self._docs_cache:
            spec = json.dumps(self.openapi).replace("</", "<\\/")
            self._docs_cache["html"] = generate_swagger_html(
                spec,
                _swagger_asset("swagger-ui-bundle.min.js"),
                _swagger_asset("swagger-ui.min.css"),
                "",
                None,
            )
        return HttpResponse(
            200, self._docs_cache["html"].encode(), [("Content-Type", "text/html; charset=utf-8")]
        )

    def persons(self) -> dict[str, Any]:
        return {"persons": [self._describe(p) for p in self.population]}

    def _describe(self, seeded: SeededPerson) -> dict[str, Any]:
        person = seeded.person
        register_address = person.address or person.address_abroad
        return {
            "identity_number": seeded.identity_number,
            "name": person.name,
            "birth_date": person.birth_date.isoformat(),
            "kind": person.kind.value,
            "address": list(register_address.lines()) if register_address else None,
            "letter_address": list(lines) if (lines := letter_address(person)) else None,
            "status": person.status.value,
            "eligible": recipient_ineligibility(person, self.today) is None,
            "category": seeded.category.value,
        }

    def persons_to_try(self) -> list[dict[str, Any]]:
        """The first person of each category of the seed."""
        seen: dict[str, dict[str, Any]] = {}
        for seeded in self.population:
            seen.setdefault(seeded.category.value, self._describe(seeded))
        return list(seen.values())


def _local_route(path: str) -> Route:
    return Route("GET", path, function="local")


def _swagger_asset(name: str) -> str:
    from importlib.resources import files  # noqa: PLC0415

    return (files("aws_lambda_powertools.event_handler.openapi.swagger_ui") / name).read_text(
        encoding="utf-8"
    )
