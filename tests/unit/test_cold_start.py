"""What keeps a cold start short, held where a regression would slip in unseen: the wiring loads a
function's modules only when that function's services are built, and the collector is off only
while a handler module loads (frozen after it on Lambda alone)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from minid import coldstart
from tests.unit.fresh import modules_loaded


def _handler_loaded(function: str) -> str:
    """Code that loads the function's handler module, as Lambda loads it (as `module`)."""
    handler = Path(__file__).parents[2] / "functions" / function / "app.py"
    return (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(handler)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
    )


def test_importing_the_wiring_loads_no_domain_and_no_adapter() -> None:
    loaded = modules_loaded("import minid.wiring", "minid")
    assert "minid.wiring" in loaded
    assert [m for m in loaded if m.startswith(("minid.domain", "minid.adapters"))] == []


@pytest.mark.parametrize("function", ["notifier", "contact_review", "letter_workflow"])
def test_a_function_that_answers_no_http_request_loads_no_pydantic_and_no_event_s_data_classes(function: str) -> None:
    """Their settings and inputs are checked by msgspec: pydantic is about 50 ms of a cold start. Nor do
    they load Powertools' event data classes (minid.coldstart.packages_on_demand)."""
    loaded = modules_loaded(_handler_loaded(function), "pydantic", "asyncio", "aws_lambda_powertools")
    assert [m for m in loaded if m.split(".")[0] in {"pydantic", "asyncio"}] == []
    assert [m for m in loaded if m.startswith(coldstart.DATA_CLASSES + ".")] == []


@pytest.mark.parametrize("function", ["login", "enrolment", "contact", "pin_letters", "print_callback", "health"])
def test_a_function_loads_only_the_event_handler_s_resolver_it_uses(function: str) -> None:
    """Powertools' event handler package loads every resolver it has (AppSync's loads asyncio): some
    15 ms of a cold start. A function's loads its own only (minid.coldstart.packages_on_demand)."""
    loaded = modules_loaded(_handler_loaded(function), "asyncio", "aws_lambda_powertools")
    others = ("appsync", "bedrock_agent", "events_appsync", "http_resolver", "lambda_function_url", "vpc_lattice")
    unused = tuple(f"{coldstart.EVENT_HANDLER}.{other}" for other in others)
    assert [m for m in loaded if m == "asyncio" or m.startswith(unused)] == []
    assert f"{coldstart.EVENT_HANDLER}.api_gateway" in loaded


@pytest.mark.parametrize("function", ["login", "enrolment", "contact", "pin_letters", "print_callback", "health"])
def test_a_function_loads_only_the_event_data_classes_its_resolver_uses(function: str) -> None:
    """Powertools' data classes package loads the classes of the 29 kinds of event it exports as the event
    handler asks for API Gateway's: some 10 ms of a cold start (minid.coldstart.packages_on_demand)."""
    loaded = modules_loaded(_handler_loaded(function), "aws_lambda_powertools")
    of_the_resolver = {  # the classes api_gateway imports, and what they stand on
        "alb_event",
        "api_gateway_proxy_event",
        "bedrock_agent_event",
        "common",
        "lambda_function_url_event",
        "shared_functions",
        "vpc_lattice",
    }
    data_classes = {
        m.removeprefix(coldstart.DATA_CLASSES + ".") for m in loaded if m.startswith(coldstart.DATA_CLASSES + ".")
    }
    assert "api_gateway_proxy_event" in data_classes
    assert data_classes <= of_the_resolver


@pytest.mark.parametrize("function", ["login", "enrolment", "contact", "pin_letters"])
def test_a_function_loads_what_only_some_of_its_requests_use_at_their_first(function: str) -> None:
    """pyotp (an authenticator app's routes) and statistics (even timing's short path): some 2 ms of a
    cold start, which a function's usual first request has no use for."""
    # and those modules loaded, as a function using them loads them
    code = _handler_loaded(function) + "import minid.domain.totp, minid.domain.timing\n"
    assert modules_loaded(code, "pyotp", "statistics", "zxcvbn") == []


@pytest.mark.parametrize("package", list(coldstart.ON_DEMAND))
def test_the_exports_of_a_package_on_demand_are_those_of_its_own_init(package: str) -> None:
    """The names, and the modules they are taken from, are those of the installed package's __init__."""
    import ast  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    imported = {
        alias.asname or alias.name: node.module.removeprefix(package + ".")
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names
    }
    exported = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
    )
    assert imported == coldstart.ON_DEMAND[package]
    assert sorted(coldstart.ON_DEMAND[package]) == sorted(exported)


# each package on demand, and a submodule of it that is not an export's
_SUBMODULES = {coldstart.EVENT_HANDLER: "openapi.params", coldstart.DATA_CLASSES: "common"}


@pytest.mark.parametrize("package", list(coldstart.ON_DEMAND))
def test_a_package_on_demand_gives_what_its_own_init_gives(package: str) -> None:
    """In a fresh interpreter: each export is the object its defining module has, found by `from ...
    import` and as an attribute; a submodule is imported as ever, and bound to the package as an import
    binds it; a name the package lacks is refused as ever; and the package is made once."""
    parent, _, child = package.rpartition(".")
    code = (
        "from minid import coldstart\n"
        "coldstart.loading()\n"
        "coldstart.packages_on_demand()\n"
        "import importlib, sys\n"
        f"import {package} as package\n"
        "assert type(package) is not type(sys), package  # the package on demand, not the package's own\n"
        "assert set(package.__all__) <= set(dir(package))  # its exports listed, as the package's own lists them\n"
        "made = package\n"
        "coldstart.packages_on_demand()\n"
        f"assert sys.modules[{package!r}] is made\n"
        f"for name, where in coldstart.ON_DEMAND[{package!r}].items():\n"
        f"    defined = getattr(importlib.import_module({package!r} + '.' + where), name)\n"
        f"    exec(f'from {package} import {{name}} as found')\n"
        "    assert found is defined and getattr(package, name) is defined, name\n"
        f"import {package}.{_SUBMODULES[package]}\n"
        f"import {parent}\n"
        f"assert {parent}.{child} is package\n"
        f"assert package.{_SUBMODULES[package]} is sys.modules[{package + '.' + _SUBMODULES[package]!r}]\n"
        "try:\n"
        f"    from {package} import NoSuchName\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('a name the package lacks was given')\n"
    )
    modules_loaded(code, "aws_lambda_powertools")  # fails if an assertion in `code` fails


def test_an_export_named_as_its_module_is_the_export_after_that_module_is_imported() -> None:
    """The data classes' `event_source` is a decorator in a module of that name: an import of the
    module, first, does not make the name the module's (as the package's own __init__ would not)."""
    code = (
        "from minid import coldstart\n"
        "coldstart.loading()\n"
        f"import {coldstart.DATA_CLASSES}.event_source\n"
        f"from {coldstart.DATA_CLASSES} import event_source\n"
        f"import {coldstart.DATA_CLASSES} as package\n"
        "import sys\n"
        f"assert event_source is sys.modules['{coldstart.DATA_CLASSES}.event_source'].event_source, event_source\n"
        "assert package.event_source is event_source\n"
    )
    modules_loaded(code, "aws_lambda_powertools")  # fails if an assertion in `code` fails


def test_a_submodule_imported_leaves_an_export_of_its_name_the_export_s(tmp_path: Path) -> None:
    """Wherever the export is defined: a package whose __init__ binds `b`, a function of its module `a`,
    over its module `b` gives the function, on demand too, after `b` is imported as a module."""
    package = tmp_path / "package_on_demand"
    package.mkdir()
    (package / "__init__.py").write_text("from . import b\nfrom .a import b\n")
    (package / "a.py").write_text("def b() -> str:\n    return 'the export'\n")
    (package / "b.py").write_text("")
    code = (
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "from minid import coldstart\n"
        "coldstart.on_demand('package_on_demand', {'b': 'a'})\n"
        "import package_on_demand.b\n"
        "from package_on_demand import b\n"
        "assert b() == 'the export', b\n"
        "assert sys.modules['package_on_demand.b'].__name__ == 'package_on_demand.b'\n"
    )
    modules_loaded(code, "package_on_demand")  # fails if an assertion in `code` fails


def test_a_request_is_answered_through_the_packages_on_demand() -> None:
    """The health function, loaded as on Lambda (the tests' own process has Powertools' packages whole),
    answers its route and a route there is not, with both packages on demand."""
    events = Path(__file__).parents[2] / "events" / "health"
    code = _handler_loaded("health") + (
        "import json, sys\n"
        "from minid import coldstart\n"
        "assert all(type(sys.modules[p]) is not type(sys) for p in coldstart.ON_DEMAND)\n"
        "from local.functions import LambdaContext\n"  # after the handler: the packages as it made them
        "for name, status in (('get-health', 200), ('unknown-route', 404)):\n"
        f"    event = json.loads(open({str(events)!r} + '/' + name + '.json').read())\n"
        "    context = LambdaContext('health', memory_limit_in_mb=128, timeout_seconds=3)\n"
        "    answer = module.lambda_handler(event, context)\n"
        "    assert answer['statusCode'] == status, (name, answer)\n"
    )
    modules_loaded(code, "aws_lambda_powertools")  # fails if an assertion in `code` fails


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


def test_the_health_function_loads_no_wiring_and_no_botocore_session() -> None:
    """It calls nothing: it answers /v1/health, every route there is not and every CORS preflight. The
    wiring (botocore's session, client, loaders: some 80 ms) is for functions that make clients."""
    loaded = modules_loaded(_handler_loaded("health"), "minid", "botocore")
    assert "minid.api.resolver" in loaded
    assert [m for m in loaded if m in {"minid.wiring", "botocore.session", "botocore.client", "botocore.loaders"}] == []


def test_the_functions_and_their_adapters_load_no_boto3() -> None:
    """Their clients are botocore's (minid.wiring): boto3's package loads s3transfer, some 15 ms of a
    cold start. The letter orders' idempotency is Powertools', whose DynamoDB layer loads boto3: it is
    loaded at the first keyed order, not when the adapter is made."""
    adapters = Path(__file__).parents[2] / "layers" / "shared" / "minid" / "adapters"
    modules = sorted(f"minid.adapters.{p.stem}" for p in adapters.glob("*.py") if p.stem != "__init__")
    code = (
        f"import minid.wiring\nfor m in {modules!r}: __import__(m)\n"
        "from minid.adapters.idempotency import PowertoolsOnceOnly\n"
        "dynamodb = minid.wiring.new_session().create_client('dynamodb', region_name='eu-north-1')\n"
        "PowertoolsOnceOnly(dynamodb, 'idempotency', name='order').use_lambda_context(None)\n"
    )
    assert "minid.adapters.idempotency" in modules_loaded(code, "minid")
    loaded = modules_loaded(code, "boto3", "s3transfer", "aws_lambda_powertools")
    assert [m for m in loaded if not m.startswith("aws_lambda_powertools") or ".idempotency" in m] == []


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


def test_the_functions_endpoints_are_botocore_s_own_cut_to_the_services_they_call() -> None:
    from local.endpoints import render  # noqa: PLC0415
    from minid import wiring  # noqa: PLC0415

    committed = Path(wiring.ENDPOINTS + ".json").read_text()
    assert committed == render(), "minid/endpoints.json is not botocore's as installed: run `make endpoints`"


def test_the_functions_models_are_botocore_s_own_cut_to_the_operations_they_call() -> None:
    from local.models import models  # noqa: PLC0415
    from minid import wiring  # noqa: PLC0415

    committed = {str(path.relative_to(wiring.MODELS)): path.read_text() for path in Path(wiring.MODELS).rglob("*.json")}
    assert committed == models(), "minid/models are not botocore's as installed: run `make models`"


def test_every_operation_the_code_calls_is_in_the_functions_models() -> None:
    """A client of a cut model has no method for another operation: every call written in the layer, the
    functions and the tools (a method of a service's client by its name, or a paginator's) is in it. The
    names only: a call of another object's method of the same name (a password's `verify`) counts too."""
    import re  # noqa: PLC0415

    import aws_lambda_powertools.utilities.idempotency.persistence.dynamodb as idempotency  # noqa: PLC0415
    from botocore import xform_name  # noqa: PLC0415
    from botocore.loaders import Loader  # noqa: PLC0415

    from local.models import OPERATIONS  # noqa: PLC0415
    from minid import wiring  # noqa: PLC0415

    root = Path(__file__).parents[2]
    code = "".join(
        path.read_text()
        for folder in ("layers/shared/minid", "functions", "tools")
        for path in (root / folder).rglob("*.py")
    )
    # and the calls of the library that calls with the functions' client: the letter orders' idempotency
    code += Path(str(idempotency.__file__)).read_text()
    called = set(re.findall(r"\.([a-z_][a-z0-9_]*)\(", code)) | set(re.findall(r'get_paginator\(\s*"([a-z_]+)"', code))
    assert "transact_write_items" in called
    loader = Loader()
    missing = set()
    for service in wiring.SERVICES:
        every = loader.load_service_model(service, "service-2")["operations"]
        missing |= {
            f"{service}.{name}" for name in every if xform_name(name) in called and name not in OPERATIONS[service]
        }
    # a password hasher's verify, not KMS's (the functions' keys are symmetric: they encrypt and decrypt)
    assert missing == {"kms.Verify"}
    assert "Scan" not in OPERATIONS["dynamodb"]  # nothing scans: the functions' client cannot


def test_a_client_of_the_functions_is_made_from_the_cut_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """And calls as botocore's own client would (the test below); an operation not called has no method."""
    from minid import wiring  # noqa: PLC0415

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    sesv2 = wiring.new_session().create_client("sesv2")
    assert sesv2.meta.service_model.operation_names == ["SendEmail"]
    assert not hasattr(sesv2, "delete_email_identity")


def test_botocore_s_endpoints_json_is_not_read_by_the_functions_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """1.2 MB parsed at the first client of a process: 10 to 20 ms of every cold start."""
    import os  # noqa: PLC0415

    import botocore.session  # noqa: PLC0415
    from botocore.loaders import JSONFileLoader, Loader  # noqa: PLC0415

    from minid import wiring  # noqa: PLC0415

    read: list[str] = []
    load_file = JSONFileLoader.load_file

    def loading(self: JSONFileLoader, file_path: str) -> object:
        read.append(file_path)
        return load_file(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", loading)
    botocores = os.path.join(Loader.BUILTIN_DATA_PATH, "endpoints")
    botocore.session.get_session().create_client("dynamodb", region_name="eu-north-1")
    assert botocores in read  # botocore's own session reads it
    read.clear()
    wiring.new_session().create_client("dynamodb", region_name="eu-north-1")
    assert botocores not in read
    assert wiring.ENDPOINTS in read


# Where each service is called, and how its calls are signed, in each partition (and with FIPS or dual-stack)
_REGIONS = ("eu-north-1", "us-east-1", "cn-north-1", "us-gov-west-1", "eu-isoe-west-1")


@pytest.mark.parametrize("region", _REGIONS)
def test_the_functions_clients_call_where_and_as_botocore_s_own_would(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut endpoints.json and the cut models (minid.wiring) resolve as the whole ones: for each service
    the functions call, the URL of a call and the scope it is signed for are the same as from botocore's
    own session."""
    import botocore.session  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    from minid import wiring  # noqa: PLC0415

    for name, value in {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):  # a profile not found: all refused
        monkeypatch.delenv(name, raising=False)
    email = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}}
    calls: dict[str, tuple[str, dict[str, Any]]] = {  # operations the functions call (the cut models' own)
        "dynamodb": ("get_item", {"TableName": "users", "Key": {"pk": {"S": "p"}}}),
        "kms": ("encrypt", {"KeyId": "alias/minid", "Plaintext": b"x"}),
        "s3": ("put_object", {"Bucket": "letters", "Key": "k", "Body": b"x"}),
        "secretsmanager": ("get_secret_value", {"SecretId": "pepper"}),
        "sesv2": ("send_email", {"FromEmailAddress": "a@example.no", "Destination": {}, "Content": email}),
        "sns": ("publish", {"PhoneNumber": "+4791234567", "Message": "m"}),
        "sqs": ("send_message", {"QueueUrl": "https://sqs.eu-north-1.amazonaws.com/1/q", "MessageBody": "m"}),
        "stepfunctions": ("describe_execution", {"executionArn": "arn:aws:states:eu-north-1:1:execution:m:e"}),
    }
    assert set(calls) == set(wiring.SERVICES)

    class Sent(Exception):
        pass

    configs = {
        "plain": Config(),
        "use_fips_endpoint": Config(use_fips_endpoint=True),
        "use_dualstack_endpoint": Config(use_dualstack_endpoint=True),
    }

    def where_and_how(session: botocore.session.Session, service: str, variant: str) -> tuple[str, ...]:
        try:
            client = session.create_client(service, region_name=region, config=configs[variant])
            operation, parameters = calls[service]

            def stop(request: object, **_: object) -> None:
                raise Sent(request.url, request.headers["Authorization"].decode().split("/")[2:4])  # type: ignore[attr-defined]

            client.meta.events.register_first("before-send", stop)
            getattr(client, operation)(**parameters)
        except Sent as sent:
            return ("sent", str(sent.args[0]), *sent.args[1])
        except Exception as error:  # a variant a region lacks: refused alike, or the test fails
            return ("refused", type(error).__name__)
        raise AssertionError("the call was not sent")

    ours, botocores = wiring.new_session(), botocore.session.get_session()
    for service in wiring.SERVICES:
        for variant in configs:
            assert where_and_how(ours, service, variant) == where_and_how(botocores, service, variant), (
                service,
                variant,
            )
        # compared by where it went, not by failing alike: every region has every service's plain endpoint
        assert where_and_how(ours, service, "plain")[0] == "sent", service
