"""The local stack, over HTTP, as a newcomer meets it after `make run`."""

from __future__ import annotations

import io
import json
import signal
import threading
import time
from datetime import date

from local.__main__ import WholeLines
from local.openapi import build_openapi
from minid.domain.identity import parse_identity_number
from tests.e2e.client import ApiClient
from tests.e2e.conftest import RunningStack, start_local_stack, stop_local_stack


def test_health(api: ApiClient) -> None:
    response = api.get("/v1/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_the_banner_names_the_urls_and_persons_to_try(local_stack: RunningStack) -> None:
    text = "\n".join(local_stack.banner)
    for path in ("/v1/health", "/docs", "/openapi.json", "/_local/persons", "/_local/outbox"):
        assert local_stack.url + path in text
    assert "eligible" in text


def test_persons_are_the_synthetic_population_register(api: ApiClient) -> None:
    persons = api.get("/_local/persons").json()["persons"]
    assert len(persons) >= 1000
    assert {p["kind"] for p in persons} == {"fnr", "dnr"}
    assert {p["status"] for p in persons} >= {"resident", "not_resident", "deceased"}
    assert any(p["eligible"] for p in persons)
    assert not all(p["eligible"] for p in persons)
    today = date.today()
    for person in persons[:50]:
        assert set(person) >= {
            "identity_number",
            "name",
            "birth_date",
            "kind",
            "address",
            "status",
            "eligible",
        }
        assert parse_identity_number(person["identity_number"], allow_synthetic=True, today=today).synthetic


def test_the_outbox_holds_letters_sms_and_emails(api: ApiClient) -> None:
    """Its shape (the session's stack is shared: what it holds is other tests')."""
    outbox = api.get("/_local/outbox").json()
    assert set(outbox) == {"letters", "sms", "emails"}
    assert all(isinstance(outbox[kind], list) for kind in outbox)


def test_openapi_and_docs(api: ApiClient) -> None:
    document = api.get("/openapi.json").json()
    assert document == build_openapi()
    docs = api.get("/docs")
    assert docs.status == 200
    assert docs.content_type.startswith("text/html")
    assert b"swagger" in docs.body.lower()


def test_an_unknown_route_is_a_404_problem(api: ApiClient) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = api.request(method, "/v1/no-such-route")
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert response.json()["type"] == "/problems/not-found"


def test_a_wrong_method_is_a_404_problem(api: ApiClient) -> None:
    response = api.request("DELETE", "/v1/health")
    assert response.status == 404
    assert response.json()["type"] == "/problems/not-found"


def test_a_body_over_16_kib_is_a_413_problem(api: ApiClient) -> None:
    response = api.post("/v1/health", body=json.dumps({"x": "y" * 17_000}).encode())
    assert response.status == 413
    assert response.json()["type"] == "/problems/payload-too-large"


def test_a_body_that_is_not_json_is_a_400_problem(api: ApiClient) -> None:
    response = api.post("/v1/health", body=b"{", headers={"Content-Type": "text/plain"})
    assert response.status == 400
    assert response.json()["type"] == "/problems/invalid-request"


def test_no_error_carries_a_stack_trace(api: ApiClient) -> None:
    for response in (api.get("/v1/nope"), api.post("/v1/health", body=b"\xff\xfe")):
        assert b"Traceback" not in response.body
        assert response.content_type == "application/problem+json"


def test_ctrl_c_and_sigterm_stop_it_cleanly() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        stack = start_local_stack()
        assert ApiClient(stack.url).get("/v1/health").status == 200
        assert stop_local_stack(stack, sig) == 0


def test_the_functions_threads_write_whole_lines_to_the_shared_stdout() -> None:
    """`print` writes a line and its newline in two calls; the threads of two functions come between."""

    class Slow(io.StringIO):  # a stream that lets other threads run between writes, as a pipe's may
        def write(self, text: str) -> int:
            time.sleep(0.0001)
            return super().write(text)

    written = Slow()
    stdout = WholeLines(written)
    start = threading.Barrier(4)

    def writer(name: str) -> None:
        start.wait()
        for number in range(100):
            print(json.dumps({"function": name, "number": number}), file=stdout)

    threads = [threading.Thread(target=writer, args=(f"f{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = written.getvalue().splitlines()
    assert len(lines) == 400
    assert all(json.loads(line)["function"] for line in lines)
