"""`make bench`: what a login costs, measured side by side in one run.

Each figure is printed as a ratio against a baseline measured in the same run (the machine's speed and
load fall on both alike), with the absolute figures beside it; everything lands in bench.json.

  cold start    each function's handler imported, adapters built and every client made, fresh
                interpreter (median of --runs) / `import boto3` and one client,     goal <= 1.5
                fresh interpreter
  request cost  login password step, handler on moto / one argon2id verify          goal <= 1.3
                login verify step, handler on moto / one argon2id verify            goal <  0.1
  AWS calls     per route and per workflow task, counted with botocore events;      goal <= 3 on the
                no Scan anywhere                                                     login path
  throughput    complete logins (password + SMS code) per second per core through the local stack
                over HTTP with concurrent clients / the argon2 bound (1 / hash time); and per CPU-second
                the stack used
  workflow      PIN letters from order to posted per second, print delay 0 / Pass-only executions
                per second on the same embedded Step Functions
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import cold_start, routes, throughput, workflow
from bench.calls import CallCounter

LOGIN_PATH = ("POST /v1/login (", "POST /v1/login/{login_id}/verify (", "POST /v1/login/{login_id}/resend")
T = TypeVar("T")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The functions' logs and metrics (stdout) and the local stack's console (logging) are not the
    benchmark's output."""
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def step(title: str, measure: Callable[[], T]) -> T:
    sys.stderr.write(f"  {title} ...\n")
    with quiet():
        return measure()


def goal(ratio: float, limit: float, strict: bool = False) -> str:
    met = ratio < limit if strict else ratio <= limit
    return f"goal {'<' if strict else '<='} {limit:g}: {'met' if met else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh interpreters per function (cold start)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of the request cost")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (throughput)")
    parser.add_argument("--logins", type=int, default=25, help="logins per client (throughput)")
    parser.add_argument("--letters", type=int, default=200, help="PIN letters in the batch (workflow)")
    parser.add_argument("--output", type=Path, default=Path("bench.json"))
    args = parser.parse_args(argv)

    sys.stderr.write("make bench: measuring (a few minutes)\n")
    baseline, functions = step("cold start", lambda: cold_start.measure(args.runs))
    first_call = step("a new connection's first call", cold_start.first_calls)
    counter = CallCounter()
    cost = step("request cost", lambda: routes.request_cost(counter, args.rounds))
    calls, operations = step("AWS calls", lambda: routes.aws_calls(counter))
    logins = step("throughput", lambda: throughput.measure(args.clients, args.logins))
    letters = step("workflow", lambda: workflow.measure(args.letters))

    figures: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "machine": platform.machine()},
        "cold_start": {
            "baseline": {"what": baseline.name, "median_ms": round(baseline.median_ms, 1)},
            "runs": args.runs,
            "functions": {f.name: f.json(baseline.median_ms) for f in functions},
            "new_connection_first_call": first_call.json(),
        },
        "request_cost": cost.json(),
        "aws_calls": {"routes_and_tasks": calls, "operations": dict(operations.most_common())},
        "throughput": logins.json(),
        "workflow": letters.json(),
    }
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(report(figures))
    print(f"\nwritten to {args.output}")
    return 0


def report(figures: dict[str, Any]) -> str:
    lines: list[str] = []
    cold = figures["cold_start"]
    lines += [
        "",
        f"Cold start (median of {cold['runs']} fresh interpreters; ratio to {cold['baseline']['what']}, "
        f"{cold['baseline']['median_ms']:.0f} ms)",
        "  (built: adapters built, as the functions make them, other clients than DynamoDB's at their first",
        "  call; with clients: those made too, as a first request calling every service the function may",
        "  call would; the goal is judged on it; each column its own median)",
        f"  {'function':<28} {'import':>7} {'built':>7} {'clients':>8} {'ms':>7} {'ratio':>6}   (ms; built's ratio)",
    ]
    for name, f in cold["functions"].items():
        # judged unrounded (1.504 is not met), with every client made
        ratio = f["with_clients_ms"] / cold["baseline"]["median_ms"]
        judged = "" if name in cold_start.REFERENCES else f"  {goal(ratio, 1.5)}"
        lines.append(
            f"  {name:<28} {f['import_ms']:>7.0f} {f['median_ms']:>7.0f} {f['clients_ms']:>8.0f}"
            f" {f['with_clients_ms']:>7.0f} {f['with_clients_ratio']:>6.2f}   ({f['ratio']:.2f}){judged}"
        )
    first = cold["new_connection_first_call"]
    lines += [
        f"  a new connection's first call (median of {first['runs']}): {first['bundle_file_ms']:.1f} ms trusting "
        f"botocore's bundle file, {first['hashed_directory_ms']:.1f} ms its hashed directory "
        f"(ratio {first['ratio']:.2f})"
    ]
    cost = figures["request_cost"]
    lines += [
        "",
        f"Request cost of an SMS login (median of {cost['rounds']} rounds; ratio to one argon2id verify, "
        f"{cost['argon2id_verify_ms']:.1f} ms; on moto, then without the AWS calls' requests (before-call to "
        "after-call, or after-call-error), then without the SDK's methods altogether (their parameters checked "
        "and serialized too))",
    ]
    for step, limit, strict in (("password_step", 1.3, False), ("verify_step", 0.1, True)):
        f = cost[step]
        hash_ms = cost["argon2id_verify_ms"]
        # judged unrounded, and on moto only, as the issue sets the goal: the figures without the calls'
        # requests are for reference (they still hold the SDK's own work, which Lambda does too)
        on_moto = f["ms"] / hash_ms
        lines.append(
            f"  {step.replace('_', ' '):<14} {f['ms']:>6.1f} ms {f['ratio']:>5.2f}  {goal(on_moto, limit, strict)};"
            f"  outside its {f['aws_calls']} AWS calls {f['ms_outside_aws_calls']:>5.1f} ms "
            f"{f['ratio_outside_aws_calls']:>5.2f};"
            f"  outside the SDK's methods {f['ms_outside_sdk_calls']:>5.1f} ms {f['ratio_outside_sdk_calls']:>5.2f}"
        )
        spent = ", ".join(
            f"{f['aws_calls_by_operation'][op]} {op} {ms:.1f}" for op, ms in f["aws_call_ms_by_operation"].items()
        )
        lines.append(f"  {'':<14} its calls' requests, ms (each operation's median; on moto, mostly moto's): {spent}")
    lines += [
        "",
        "AWS calls per request (the most any one made on the journey: every route, and the ways through a",
        "route that cost more, in parentheses; building an execution environment apart)",
    ]
    for row in figures["aws_calls"]["routes_and_tasks"]:
        flag = f"  {goal(row['calls'], 3)}" if row["what"].startswith(LOGIN_PATH) else ""
        operations = ", ".join(f"{n} {op}" for op, n in row["operations"].items())
        if row["environment_calls"]:  # once per execution environment, not per request
            built = ", ".join(f"{n} {op}" for op, n in row["environment_calls"].items())
            operations += f" (and, building its environments, {built})"
        lines.append(f"  {row['calls']:>3}  {row['what']:<52} {operations}{flag}")
    scans = sum(n for op, n in figures["aws_calls"]["operations"].items() if op.endswith(".Scan"))
    lines.append(
        f"  Scan calls on the journey: {scans}; none anywhere else either: the functions' DynamoDB client has no"
        " Scan (its model is cut to the operations they call: local/models.py)"
    )
    logins = figures["throughput"]
    lines += [
        "",
        f"Throughput ({logins['clients']} clients over HTTP, {logins['logins']} complete logins, "
        f"{logins['cores']} cores)",
        f"  {logins['logins_per_second']:.1f} logins/s: {logins['logins_per_second_per_core']:.1f} per second per core "
        f"against the argon2 bound {logins['argon2_bound_per_core']:.1f}, ratio {logins['ratio']:.2f}",
        f"  {logins['cpu_ms_per_login']:.0f} ms of the stack's CPU each (the clients' own "
        f"{logins['client_cpu_ms_per_login']:.0f} ms left out): {logins['logins_per_cpu_second']:.1f} per CPU-second "
        f"it used, ratio {logins['ratio_per_cpu_second']:.2f}",
    ]
    letters = figures["workflow"]
    lines += [
        "",
        f"PIN-letter workflow ({letters['letters']} letters ordered at once, print delay 0)",
        f"  {letters['letters_per_second']:.1f} letters/s from order to posted ({letters['seconds']:.1f} s); "
        f"a Pass-only execution: {letters['pass_only_executions_per_second']:.1f}/s; "
        f"a letter takes {letters['ratio']:.0f} times as long",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
