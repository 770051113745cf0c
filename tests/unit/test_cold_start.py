"""What keeps a cold start short, held where a regression would slip in unseen: the wiring loads a
function's modules only when that function's services are built, and the collector is off only
while a handler module loads (frozen after it on Lambda alone)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from minid import coldstart
from tests.unit.fresh import modules_loaded


def test_importing_the_wiring_loads_no_domain_and_no_adapter() -> None:
    loaded = modules_loaded("import minid.wiring", "minid")
    assert "minid.wiring" in loaded
    assert [m for m in loaded if m.startswith(("minid.domain", "minid.adapters"))] == []


@pytest.mark.parametrize("function", ["notifier", "contact_review", "letter_workflow"])
def test_a_function_that_answers_no_http_request_loads_no_pydantic(function: str) -> None:
    """Their settings and inputs are checked by msgspec: pydantic is about 50 ms of a cold start."""
    handler = Path(__file__).parents[2] / "functions" / function / "app.py"
    code = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(handler)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    assert modules_loaded(code, "pydantic", "asyncio") == []


def test_the_collector_is_off_while_a_handler_loads_and_on_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    frozen = gc.get_freeze_count()
    coldstart.loading()
    assert not gc.isenabled()
    coldstart.loaded()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # not on Lambda: nothing set aside for good


def test_on_lambda_what_the_load_made_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "minid-login")
    coldstart.loading()
    made = [[i] for i in range(1000)]  # containers the collector tracks
    try:
        coldstart.loaded()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()


def test_the_layer_makes_its_records_as_structs_not_dataclasses() -> None:
    """A frozen dataclass compiles its methods as its class is made (0.6 to 1 ms each, 25 to 60 per
    function); a msgspec Struct's class is made in C (minid.values)."""
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    import minid  # noqa: PLC0415

    dataclasses_made = [
        f"{module.__name__}.{name}"
        for info in pkgutil.walk_packages(minid.__path__, "minid.")
        for module in [importlib.import_module(info.name)]
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(value, "__dataclass_fields__")
    ]
    assert dataclasses_made == []


def test_the_functions_and_their_adapters_load_no_boto3() -> None:
    """Their clients are botocore's (minid.wiring): boto3's package loads s3transfer, some 15 ms of a
    cold start. (The letter orders' idempotency is Powertools', which loads boto3 itself.)"""
    adapters = Path(__file__).parents[2] / "layers" / "shared" / "minid" / "adapters"
    modules = sorted(
        f"minid.adapters.{p.stem}" for p in adapters.glob("*.py") if p.stem not in ("__init__", "idempotency")
    )
    code = f"import minid.wiring\nfor m in {modules!r}: __import__(m)"
    assert "minid.adapters.dynamodb" in modules_loaded(code, "minid")
    assert modules_loaded(code, "boto3", "s3transfer") == []


def test_the_functions_clients_are_made_without_listing_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's loader lists all its ~440 services' folders before the first model of a process (some
    20 ms of a cold start); the functions' loader looks into the folders of the services they call only,
    and loads the same model (the same API version) as botocore's own loader."""
    import os  # noqa: PLC0415

    import botocore.session  # noqa: PLC0415
    from botocore.loaders import Loader  # noqa: PLC0415

    from minid import wiring  # noqa: PLC0415

    listed: list[str] = []
    listdir = os.listdir

    def listing(path: str = ".") -> list[str]:
        listed.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", listing)
    ours, botocores = wiring.new_session(), botocore.session.get_session()
    for service in wiring.SERVICES:
        made = ours.create_client(service, region_name="eu-north-1")
        stock = botocores.create_client(service, region_name="eu-north-1")
        assert made.meta.service_model.api_version == stock.meta.service_model.api_version
    assert listed.count(Loader.BUILTIN_DATA_PATH) >= 1  # botocore's own loader lists them all
    listed.clear()
    wiring.new_session().create_client("dynamodb", region_name="eu-north-1")
    assert Loader.BUILTIN_DATA_PATH not in listed
    assert {Path(p).name for p in listed} <= set(wiring.SERVICES)


def test_a_service_the_functions_do_not_call_is_refused_as_unknown() -> None:
    from botocore.exceptions import UnknownServiceError  # noqa: PLC0415

    from minid import wiring  # noqa: PLC0415

    with pytest.raises(UnknownServiceError):
        wiring.new_session().create_client("ec2", region_name="eu-north-1")
