"""`make run`: the MinID API on 127.0.0.1 with embedded AWS. `python -m local --port 0` takes a free port."""

from __future__ import annotations

import argparse
import errno
import io
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import TextIO

from local.aws import REGION, embedded_aws
from local.gateway import LocalHttpServer
from local.provision import LOCAL_PARAMETERS, RuleFailed
from local.stack import DEFAULT_PRINT_DELAY_SECONDS, LocalStack


def _name_and_value(item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not (name and equals):
        raise argparse.ArgumentTypeError(f"{item!r} is not NAME=VALUE")
    return name, value


class _EveryLineNamed(logging.Formatter):
    """Each line of a message that has several (an SMS, a letter) starts with the logger's name."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", f"\n{record.name}: ")


class WholeLines(io.TextIOBase):
    """The process's stdout, shared by every function's threads, written a whole line at a time.

    On Lambda each execution environment has a log stream of its own; here they share one, and `print`
    writes a line's text and its newline in two calls, between which another thread may write (Powertools'
    metrics are flushed so): two JSON lines would run into one, which no log reader takes."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._lock = threading.Lock()
        self._partial = threading.local()  # each thread's text since its last newline

    def write(self, text: str) -> int:
        pending: str = getattr(self._partial, "text", "") + text
        lines, newline, rest = pending.rpartition("\n")
        if newline:
            with self._lock:
                self._stream.write(lines + newline)
        self._partial.text = rest
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def writable(self) -> bool:
        return True


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def banner(url: str, stack: LocalStack, started: float) -> str:
    lines = [
        f"MinID local stack: {url}",
        f"  stage local, embedded AWS (moto) in {REGION}, ready in {time.perf_counter() - started:.1f} s",
        "",
        f"  Health    {url}/v1/health",
        f"  Docs      {url}/docs   (OpenAPI: {url}/openapi.json)",
        f"  Persons   {url}/_local/persons   ({len(stack.population)} synthetic persons)",
        f"  Outbox    {url}/_local/outbox    (letters, SMS and e-mails)",
        "",
        "  Persons to try (synthetic test numbers, no real person has them):",
    ]
    for person in stack.persons_to_try():
        address = ", ".join(person["letter_address"] or person["address"] or ["no address"])
        eligible = "eligible" if person["eligible"] else "not eligible"
        number, name, category = person["identity_number"], person["name"], person["category"]
        lines.append(f"    {number}  {name:<28} {category:<11} {eligible:<13} {address}")
    lines += ["", "  Ctrl-C stops.", ""]
    return "\n".join(lines)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _seconds(value: str) -> float:
    """A delay: a number of seconds from 0 to a day (the simulated provider sleeps it after taking a job: a
    delay time.sleep refuses, negative or too long, would leave that letter untold, waited for the print
    timeout's days)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not (math.isfinite(seconds) and 0 <= seconds <= 86400):
        raise argparse.ArgumentTypeError(f"{value} is not a delay (0 to 86400 seconds)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=3000, help="0 takes a free port")
    parser.add_argument(
        "--print-delay",
        type=_seconds,
        default=DEFAULT_PRINT_DELAY_SECONDS,
        help="seconds the simulated print provider takes to post a letter",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        type=_name_and_value,
        metavar="NAME=VALUE",
        help="template parameters, as for sam deploy (e.g. LockoutThreshold=5)",
    )
    args = parser.parse_args(argv)
    overrides = dict(args.parameter_overrides)
    if overrides.get("Stage", LOCAL_PARAMETERS["Stage"]) != LOCAL_PARAMETERS["Stage"]:
        # (the tests start a local stack of another stage, to hold that stage's rules: `make run` does not)
        parser.error(
            f"the local stack runs as stage {LOCAL_PARAMETERS['Stage']!r}: it serves every code sent at "
            "/_local/outbox and seeds synthetic identity numbers (which prod refuses). Deploy to run another stage."
        )
    try:  # the port first: one in use is told now, not after the stack has been set up and started
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as error:
        hint = ": make run PORT=<another port>" if error.errno in (errno.EADDRINUSE, errno.EACCES) else ""
        why = os.strerror(error.errno) if error.errno and error.errno > 0 else error.strerror or str(error)
        parser.error(f"cannot listen on {args.host}:{args.port} ({why}){hint}")
    sys.stdout = WholeLines(sys.stdout)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_EveryLineNamed("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[console])
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    with embedded_aws() as session:
        try:
            stack = LocalStack.start(session, print_delay_seconds=args.print_delay, parameters=overrides)
        except RuleFailed as refused:  # as CloudFormation would refuse the stack: told, not a traceback
            parser.error(str(refused))
        try:  # (taken since the check above: the stack stopped, not left running)
            server = LocalHttpServer((args.host, args.port), stack.gateway())
        except OSError:
            stack.stop()
            raise
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}"
        sys.stdout.write(banner(url, stack, started) + "\n")
        sys.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            stack.stop()
            server.server_close()
    sys.stdout.write("MinID local stack stopped.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
