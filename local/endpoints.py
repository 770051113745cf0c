"""The endpoints of the services the functions call, cut from botocore's own endpoints.json.

botocore parses its endpoints.json (1.2 MB, every service in every partition) at the first client of a
process: 10 to 20 ms of every cold start, for the entries of the few services the functions call
(minid.wiring.SERVICES). minid/endpoints.json holds every partition as botocore has it, with those
services' entries only; the functions' loader gives it to botocore in place of the whole file.

`python -m local.endpoints` prints it; `make endpoints` writes it to layers/shared/minid/endpoints.json,
which is committed (a test fails when it no longer matches the botocore installed: after an upgrade).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from botocore.loaders import Loader

from minid.wiring import SERVICES


def cut(endpoints: dict[str, Any], session: botocore.session.Session) -> dict[str, Any]:
    """`endpoints` (botocore's endpoints.json) with the entries of SERVICES only (by endpoint prefix:
    sesv2's is "email", stepfunctions' "states"), every partition's own data kept whole."""
    prefixes = {session.get_service_model(service).endpoint_prefix for service in SERVICES}
    partitions = [
        {**partition, "services": {name: data for name, data in partition["services"].items() if name in prefixes}}
        for partition in endpoints["partitions"]
    ]
    return {**endpoints, "partitions": partitions}


def render() -> str:
    session = botocore.session.get_session()
    endpoints, path = Loader().load_data_with_path("endpoints")  # botocore's own loader and file
    if not Loader().is_builtin_path(path):
        raise RuntimeError(f"endpoints.json is not botocore's own (AWS_DATA_PATH?): {path}")
    return json.dumps(cut(endpoints, session), indent=1) + "\n"


if __name__ == "__main__":
    print(render(), end="")
