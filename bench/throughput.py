"""Throughput: complete logins (password, then the SMS code) through the local stack over HTTP, with
concurrent clients, against the argon2 bound (one login per argon2id verify per core).

The stack is `make run`'s: the HTTP API emulator in front of the real handlers on embedded moto, in
this process, with the per-client limits raised (every client is 127.0.0.1 here). The clients are
threads of the same process that read their SMS codes from the local outbox; the process's CPU time
over the run, less the client threads' own (each measures its thread's), divided among the logins, is
what a login costs the stack's core. That CPU time includes the stack's pollers (the SQS queues' and
the DynamoDB stream's), idle or not, over the run: the per-CPU-second figure is the stack's as a whole,
not the login handlers' alone.

The argon2 bound is measured just before the run and just after it, so that the machine's load then
falls on both sides.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local.aws import embedded_aws
from local.gateway import LocalHttpServer
from local.stack import LocalStack
from minid.adapters.passwords import Argon2PasswordHasher
from tests.integration.letters import LetterDriver
from tests.integration.users import PASSWORD, User, enrolled

NO_CLIENT_LIMITS = {
    "ClientIdentityAttemptsPerMinute": "1000000",
    "ClientCodesSentPerHour": "1000000",
    "CodesToPersonPerHour": "1000000",
    "ClientLetterOrdersPerHour": "1000000",
}


@dataclass(frozen=True)
class Throughput:
    clients: int
    logins: int
    seconds: float
    cpu_seconds: float  # the stack's: the process's, less the clients'
    client_cpu_seconds: float
    hash_ms: float

    def json(self) -> dict[str, Any]:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        per_second = self.logins / self.seconds
        per_core = per_second / cores  # the machine's cores, busy or not
        per_cpu_second = self.logins / self.cpu_seconds  # the cores' time the stack did use
        bound = 1000 / self.hash_ms  # a core that did nothing but hash
        return {
            "clients": self.clients,
            "logins": self.logins,
            "logins_per_second": round(per_second, 1),
            "cores": cores,
            "logins_per_second_per_core": round(per_core, 1),
            "argon2_bound_per_core": round(bound, 1),
            "ratio": round(per_core / bound, 2),
            "cpu_ms_per_login": round(self.cpu_seconds * 1000 / self.logins, 1),
            "client_cpu_ms_per_login": round(self.client_cpu_seconds * 1000 / self.logins, 1),
            "logins_per_cpu_second": round(per_cpu_second, 1),
            "ratio_per_cpu_second": round(per_cpu_second / bound, 2),
        }


@contextmanager
def served_stack() -> Iterator[tuple[LetterDriver, str]]:
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=None, population_size=120, parameters=NO_CLIENT_LIMITS)
        server = LocalHttpServer(("127.0.0.1", 0), local.gateway())
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        driver = LetterDriver(local)
        try:
            yield driver, f"127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            driver.stop_running()
            local.stop()


def post(connection: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> dict[str, Any]:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
    answer: dict[str, Any] = json.loads(data)
    return answer


def log_in(connection: http.client.HTTPConnection, user: User) -> None:
    login = post(connection, "/v1/login", {"identity_number": user.identity_number, "password": PASSWORD})
    post(connection, f"/v1/login/{login['login_id']}/verify", {"code": user.last_sms_code()})


def hash_samples(hasher: Argon2PasswordHasher, stored: str, count: int = 20) -> list[float]:
    """Seconds each of `count` argon2id verifies took."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - started)
    return times


def measure(clients: int = 4, logins_per_client: int = 25) -> Throughput:
    with served_stack() as (driver, address):
        users = [enrolled(driver, mobile=f"9400{i:04d}") for i in range(clients)]
        hasher = Argon2PasswordHasher(driver.local.keyer)
        stored = hasher.hash(PASSWORD)
        hash_times = hash_samples(hasher, stored)
        connections = [http.client.HTTPConnection(address, timeout=30) for _ in users]
        with ThreadPoolExecutor(clients) as pool:  # the clients at once, as below: the environments made here
            for _ in range(2):
                list(pool.map(log_in, connections, users))  # a failure raised here
        errors: list[BaseException] = []
        client_cpu: list[float] = []  # each client thread's own CPU time (list.append is atomic)
        barrier = threading.Barrier(clients + 1)

        def client(connection: http.client.HTTPConnection, user: User) -> None:
            barrier.wait()
            cpu_started = time.thread_time()
            try:
                for _ in range(logins_per_client):
                    log_in(connection, user)
            except BaseException as error:  # reported below, with the figures withheld
                errors.append(error)
            client_cpu.append(time.thread_time() - cpu_started)

        threads = [threading.Thread(target=client, args=pair) for pair in zip(connections, users, strict=True)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started, cpu_started = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.join()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if errors:
            raise RuntimeError(f"{len(errors)} clients failed") from errors[0]
        hash_times += hash_samples(hasher, stored)  # before and after: the machine's load then falls on both
        hash_ms = statistics.median(hash_times) * 1000
        theirs = sum(client_cpu)
        return Throughput(clients, clients * logins_per_client, seconds, cpu_seconds - theirs, theirs, hash_ms)
