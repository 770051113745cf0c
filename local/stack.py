"""The local stack assembled: embedded AWS provisioned from the template, the functions (with Lambda's
Invoke and SQS event sources routed to them), the seeded population register, the simulated print
provider, the outbox, and the gateway with its local-only routes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import boto3
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

from local import print_provider
from local.aws import ACCOUNT_ID
from local.cors import Cors
from local.event_sources import DynamoDbStreamEventSource, SqsEventSource
from local.functions import Functions, LambdaFunction, apply_environment, route_lambda_invocations
from local.gateway import Gateway, HttpRequest, HttpResponse, LocalRoute
from local.openapi import build_openapi
from local.outbox import Outbox
from local.population_seed import SeededPerson, generate_population
from local.print_provider import PrintProviderSimulator
from local.provision import LOCAL_PARAMETERS, Stack, provision
from local.template import Route, Template, queue_sources, stream_sources
from minid.adapters.clock import SystemClock
from minid.adapters.letters import DynamoDbPinLetters
from minid.adapters.population import DynamoDbPopulationRegister
from minid.adapters.secrets import load_pepper
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, PersonKey
from minid.domain.letters.model import letter_address, recipient_ineligibility
from minid.domain.time import today_in_norway

# Logical ids in template.yaml that the local stack itself reads or writes.
POPULATION_TABLE = "PopulationRegisterTable"
LETTERS_TABLE = "PinLettersTable"
PEPPER = "PepperSecret"
PRINT_QUEUE = "PrintQueue"
PRINT_PROVIDER_ROLE = "PrintProviderRole"
DEFAULT_PRINT_DELAY_SECONDS = 2.0
DEFAULT_POPULATION_SIZE = 1200
LOCAL_RETRY_AFTER_SECONDS = 1  # a failed notice comes back in a second here, not after the queue's minute

# Only for the local stack: the functions' logs stay quiet about tracing they cannot send. Their metrics
# are written to stdout with the logs, as Lambda writes them to CloudWatch Logs (embedded metric format).
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class LocalStack:
    session: boto3.Session
    template: Template
    stack: Stack
    functions: Functions
    outbox: Outbox
    population: list[SeededPerson]
    today: date
    keyer: Keyer
    print_delay_seconds: float | None
    _workers: list[SqsEventSource | DynamoDbStreamEventSource | PrintProviderSimulator] = field(default_factory=list)
    _docs_cache: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        session: boto3.Session,
        *,
        print_delay_seconds: float | None = DEFAULT_PRINT_DELAY_SECONDS,
        population_size: int = DEFAULT_POPULATION_SIZE,
        parameters: Mapping[str, str] | None = None,
    ) -> LocalStack:
        """Provision, seed and start. `print_delay_seconds=None` leaves printing to the caller
        (tests that play the print provider themselves); `parameters` override the template's, as
        `sam deploy --parameter-overrides` would."""
        template = Template.load()
        stack = provision(template, session, {**LOCAL_PARAMETERS, **(parameters or {})})
        specs = template.functions()
        apply_environment({"local": LOCAL_ENVIRONMENT} | {s.logical_id: stack.function_environment(s) for s in specs})
        functions = Functions([LambdaFunction(spec, stack.function_name(spec)) for spec in specs])
        route_lambda_invocations(functions)
        today = today_in_norway(SystemClock())
        population = generate_population(year=today.year, count=population_size)
        keyer = Keyer(load_pepper(session.client("secretsmanager"), stack.refs[PEPPER]))
        register = DynamoDbPopulationRegister(session.client("dynamodb"), stack.refs[POPULATION_TABLE])
        register.put_many(
            (
                keyer.person_key(parse_identity_number(p.identity_number, allow_synthetic=True, today=today)),
                p.person,
            )
            for p in population
        )
        local = cls(session, template, stack, functions, Outbox(), population, today, keyer, print_delay_seconds)
        local._start_workers()
        return local

    def _start_workers(self) -> None:
        for source in queue_sources(self.template):
            queue_arn = self.stack.resolve(source.queue)
            self._workers.append(
                SqsEventSource(
                    self.session,
                    self._queue_url(queue_arn),
                    queue_arn,
                    self.functions.by_logical_id[source.function],
                    batch_size=source.batch_size,
                    reports_failures=source.reports_failures,
                    retry_after_seconds=LOCAL_RETRY_AFTER_SECONDS,
                )
            )
        for stream in stream_sources(self.template):
            on_failure = self.stack.resolve(stream.on_failure) if stream.on_failure is not None else None
            self._workers.append(
                DynamoDbStreamEventSource(
                    self.session,
                    self.stack.resolve(stream.stream),
                    self.functions.by_logical_id[stream.function],
                    starting_position=stream.starting_position,
                    batch_size=stream.batch_size,
                    patterns=stream.patterns,
                    reports_failures=stream.reports_failures,
                    maximum_retry_attempts=stream.maximum_retry_attempts,
                    on_failure_queue_url=self._queue_url(on_failure) if on_failure is not None else None,
                    retry_after_seconds=LOCAL_RETRY_AFTER_SECONDS,
                )
            )
        if self.print_delay_seconds is not None:
            self._workers.append(
                PrintProviderSimulator(
                    self.session,
                    self.stack.refs[PRINT_QUEUE],
                    self.gateway(),
                    self.outbox,
                    delay_seconds=self.print_delay_seconds,
                    identity_of=self.identity_of_letter,
                )
            )
        for worker in self._workers:
            worker.start()

    def streams_caught_up(self, timeout: float = 10) -> None:
        """Wait until every stream's mapping has handed over what was written before the call (a lock's
        notice is queued a moment after the lock)."""
        for worker in self._workers:
            if isinstance(worker, DynamoDbStreamEventSource) and not worker.caught_up(timeout):
                raise TimeoutError(f"a stream is still being handed over after {timeout} s")

    def _queue_url(self, queue_arn: str) -> str:
        return str(self.stack.refs[next(k for k, v in self.stack.attributes.items() if v.get("Arn") == queue_arn)])

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()

    # ------------------------------------------------------------------ who is who
    @cached_property
    def identity_by_person(self) -> dict[PersonKey, str]:
        return {
            self.keyer.person_key(parse_identity_number(p.identity_number, allow_synthetic=True, today=self.today)): (
                p.identity_number
            )
            for p in self.population
        }

    def identity_of_letter(self, letter_id: str) -> str | None:
        """The synthetic identity number a letter went to (the local outbox shows it; AWS never has it)."""
        letter = DynamoDbPinLetters(self.session.client("dynamodb"), self.stack.refs[LETTERS_TABLE]).get(letter_id)
        return self.identity_by_person.get(letter.person) if letter else None

    # ------------------------------------------------------------------ the gateway and local-only routes
    def gateway(self) -> Gateway:
        local_routes: list[tuple[str, Route, LocalRoute]] = [
            ("GET", _local_route("/"), lambda r, p: HttpResponse(302, headers=[("Location", "/docs")])),
            ("GET", _local_route("/openapi.json"), lambda r, p: HttpResponse.json(200, self.openapi)),
            ("GET", _local_route("/docs"), lambda r, p: self._docs()),
            ("GET", _local_route("/_local/persons"), lambda r, p: HttpResponse.json(200, self.persons())),
            (
                "GET",
                _local_route("/_local/outbox"),
                lambda r, p: HttpResponse.json(200, self.outbox_now()),
            ),
            ("GET", _local_route("/_local/outbox/letters/{letter_id}.pdf"), self._letter_pdf),
        ]
        provider = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.stack.refs[PRINT_PROVIDER_ROLE]}/print-provider"
        return Gateway(
            self.template.routes(),
            self.functions,
            local_routes,
            iam_principals={print_provider.ACCESS_KEY_ID: provider},
            cors=Cors.of(self.stack.resolve(self.template.resources["HttpApi"]["Properties"].get("CorsConfiguration"))),
        )

    def outbox_now(self) -> dict[str, Any]:
        """The outbox, each letter with whether its codes work yet: they do once the workflow has activated
        it, just after the post has it (a client that waits for this need not guess how long that takes)."""
        outbox = self.outbox.snapshot()
        letters = DynamoDbPinLetters(self.session.client("dynamodb"), self.stack.refs[LETTERS_TABLE])
        for letter in outbox["letters"]:
            found = letters.get(letter["letter_id"])
            letter["codes_work"] = found is not None and found.codes_work
        return outbox

    def _letter_pdf(self, request: HttpRequest, parameters: dict[str, str]) -> HttpResponse:
        pdf = self.outbox.pdf(parameters["letter_id"])
        if pdf is None:
            return HttpResponse.json(404, {"message": "No such letter in the outbox"})
        return HttpResponse(200, pdf, [("Content-Type", "application/pdf")])

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
        return HttpResponse(200, self._docs_cache["html"].encode(), [("Content-Type", "text/html; charset=utf-8")])

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

    return (files("aws_lambda_powertools.event_handler.openapi.swagger_ui") / name).read_text(encoding="utf-8")
