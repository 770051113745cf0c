"""The service models of the services the functions call, cut from botocore's own to the operations they call.

A client's creation loads its service's model (botocore's service-2.json, gzipped, every operation and
every shape with its documentation: 1.5 MB of JSON for S3) and makes a method for each operation: 4 to
30 ms a client (S3 and Step Functions the most), paid by each function at its first call to each
service (`make bench`, the cold start's "clients" column); cut, 2 to 4 ms (S3 10 to 16: its endpoint
rules, which are not cut). The functions call some 20 operations of 8 services: minid/models holds each
service's model, as botocore has it installed, with those operations and the shapes they use only; the
functions' loader (minid.wiring) hands it to botocore in place of the whole one.

A client of a cut model has no method for another operation: OPERATIONS names every operation the
functions and the tools call, and a test holds it to the calls written in the code, and the committed
models equal to botocore's as installed (as for endpoints.json).

A call botocore makes by itself of an operation not cut in goes without it: the one known is S3's lookup
of a bucket's region (HeadBucket) when a bucket of another region answers without naming its own, which
the functions' bucket, in their region, never does.

`python -m local.models DIR` writes them under DIR; `make models` writes them to layers/shared/minid/models.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from botocore.loaders import Loader

from minid.wiring import SERVICES

# Every operation the functions and the tools call (and each paginator's), by service: a client of the
# cut model has no other method. ListTables: the cheapest call, for the tests' and the bench's first call.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": (
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "ListTables",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "UpdateItem",
    ),
    "kms": ("Decrypt", "Encrypt"),
    "s3": ("DeleteObjects", "PutObject"),
    "secretsmanager": ("GetSecretValue",),
    "sesv2": ("SendEmail",),
    "sns": ("Publish",),
    "sqs": ("ChangeMessageVisibility", "SendMessage"),
    "stepfunctions": (
        "DescribeExecution",
        "GetExecutionHistory",
        "SendTaskFailure",
        "SendTaskSuccess",
        "StartExecution",
    ),
}


def cut(model: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """`model` (a service-2) with `operations` only and the shapes they reach; all else as it is (its
    metadata, the operations' and the shapes' own data: botocore reads some of their documentation)."""
    kept = {name: model["operations"][name] for name in operations}
    shapes: set[str] = set()
    reached = [ref["shape"] for op in kept.values() for ref in _refs_of_operation(op)]
    while reached:
        name = reached.pop()
        if name not in shapes:
            shapes.add(name)
            reached += [ref["shape"] for ref in _refs_of_shape(model["shapes"][name])]
    return {**model, "operations": kept, "shapes": {n: s for n, s in model["shapes"].items() if n in shapes}}


def _refs_of_operation(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (operation[part] for part in ("input", "output") if part in operation)
    yield from operation.get("errors", ())


def _refs_of_shape(shape: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from shape.get("members", {}).values()
    yield from (shape[part] for part in ("member", "key", "value") if part in shape)


def models(loader: Loader | None = None) -> dict[str, str]:
    """Each cut model as minid/models has it: by its path there (service/version/service-2.json); from
    `loader`'s files (botocore's own, installed, by default)."""
    loader = loader or Loader()
    rendered = {}
    for service in SERVICES:
        version = loader.determine_latest_version(service, "service-2")
        model = loader.load_service_model(service, "service-2", version)
        path = os.path.join(service, version, "service-2.json")
        rendered[path] = json.dumps(cut(model, OPERATIONS[service]), indent=1, sort_keys=True) + "\n"
    return rendered


def main(folder: str) -> None:
    for path, text in models().items():
        os.makedirs(os.path.join(folder, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(folder, path), "w", encoding="utf-8") as file:
            file.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
