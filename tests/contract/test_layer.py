"""The shared layer as `sam build` makes it: every runtime dependency, built for python3.13 on arm64.

`make test` runs `make package` (sam build) first; CI does the same.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path
from typing import cast

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "SharedLayer" / "python"
BYTECODE_RECORD = BUILD / "bytecode.json"  # written by the Makefile's build, outside the layer
REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"
LAMBDA_MARKERS: dict[str, str] = {
    **cast("dict[str, str]", default_environment()),
    "extra": "",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


@pytest.fixture(scope="module")
def built() -> dict[str, importlib.metadata.Distribution]:
    assert LAYER.is_dir(), "no layer build: run `make package` (sam build) first"
    return {canonicalize_name(d.metadata["Name"]): d for d in importlib.metadata.distributions(path=[str(LAYER)])}


def test_every_pinned_requirement_is_in_the_layer_at_its_pin(
    built: dict[str, importlib.metadata.Distribution],
) -> None:
    for name, version in _pins(REQUIREMENTS).items():
        assert name in built, f"{name} is missing from the layer"
        assert built[name].version == version


def test_every_dependency_of_what_is_in_the_layer_is_in_the_layer(
    built: dict[str, importlib.metadata.Distribution],
) -> None:
    missing = []
    for name, distribution in built.items():
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(LAMBDA_MARKERS):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in built or built[dependency].version not in requirement.specifier:
                missing.append(f"{name} needs {requirement}")
    assert missing == []


def test_compiled_extensions_are_for_cpython_3_13_on_arm64() -> None:
    extensions = list(LAYER.rglob("*.so"))
    assert extensions, "expected compiled extensions (pydantic-core)"
    wrong = [p.name for p in extensions if not re.search(r"cpython-313-aarch64-linux-gnu|abi3", p.name)]
    assert wrong == []


def test_the_layer_holds_the_minid_package_as_in_the_source() -> None:
    source = ROOT / "layers" / "shared" / "minid"
    expected = {p.relative_to(source) for p in source.rglob("*.py")}
    assert {p.relative_to(LAYER / "minid") for p in (LAYER / "minid").rglob("*.py")} == expected
    assert not [p for p in (LAYER / "minid").rglob("*.pyc") if ".cpython-313." not in p.name]  # none of this machine's
    fonts = source / "adapters" / "fonts"
    assert {p.name for p in (LAYER / "minid" / "adapters" / "fonts").iterdir()} == {p.name for p in fonts.iterdir()}


def test_the_layer_s_endpoints_are_its_own_botocore_s_cut_to_the_services_called() -> None:
    """minid/endpoints.json stands in for botocore's endpoints.json in the functions (minid.wiring): it
    must be cut from the botocore the layer carries."""
    import botocore.session  # noqa: PLC0415

    from local.endpoints import cut  # noqa: PLC0415

    layers = json.loads((LAYER / "botocore" / "data" / "endpoints.json").read_text())
    assert json.loads((LAYER / "minid" / "endpoints.json").read_text()) == cut(layers, botocore.session.get_session())


def test_the_layer_s_service_models_are_its_own_botocore_s_cut_to_the_operations_called() -> None:
    """minid/models stand in for botocore's service models in the functions (minid.wiring): each must be
    cut from the botocore the layer carries, of the API version it has (a model missing, or of another
    version, would be passed over for botocore's whole one: a start slower, and no test failing)."""
    from botocore.loaders import Loader  # noqa: PLC0415

    from local.models import models  # noqa: PLC0415

    layers = Loader(extra_search_paths=[str(LAYER / "botocore" / "data")], include_default_search_paths=False)
    built = {
        str(p.relative_to(LAYER / "minid" / "models")): p.read_text()
        for p in (LAYER / "minid" / "models").rglob("*.json")
    }
    assert built == models(layers)


def test_the_layer_s_roots_are_its_own_botocore_s_bundle_hashed() -> None:
    """minid/roots stands in for botocore's cacert.pem in the functions (minid.wiring): the same
    certificates, or the functions would trust other authorities than botocore does."""
    from local.roots import certificates, hashed  # noqa: PLC0415

    bundle = (LAYER / "botocore" / "cacert.pem").read_text()
    assert {p.name: p.read_text() for p in (LAYER / "minid" / "roots").iterdir()} == hashed(certificates(bundle))
    assert len(certificates(bundle)) == bundle.count("-----BEGIN CERTIFICATE-----")
    assert not (LAYER / "certifi").exists()  # else botocore would trust certifi's bundle, not its own


def _bytecode_record() -> dict[str, str] | None:
    """What compiled the layer's bytecode, as the build recorded it (BUILD_RECORD in the Makefile): None
    where it found no CPython 3.13. Not the Python the machine has now, which may have changed since."""
    assert BYTECODE_RECORD.is_file(), "no record of the layer's bytecode: run `make package` (not sam build alone)"
    record: dict[str, str] | None = json.loads(BYTECODE_RECORD.read_text())
    return record


def test_every_module_of_the_layer_carries_bytecode_that_lambda_loads_without_compiling() -> None:
    """Lambda's /opt is read-only: a module without its .pyc is compiled from source at every cold start.
    Each must have CPython 3.13's bytecode, hash-based and unchecked (flags 0b01), so that neither the
    source's time (a zip keeps it to two seconds) nor its content is looked at. Where the build found no
    CPython 3.13 it made none, and then no bytecode of another Python may be in the layer: the build's
    record says which, so a 3.13 installed or removed since the build does not fail a build made right."""
    record = _bytecode_record()
    modules = sorted(LAYER.rglob("*.py"))
    assert len(modules) > 1000
    if record is None:
        assert list(LAYER.rglob("*.pyc")) == []
        return
    assert record["cache_tag"] == "cpython-313"
    magic = record["magic_number"]
    wrong = []
    for module in modules:
        compiled = module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
        header = compiled.read_bytes()[:8] if compiled.exists() else b""
        if header[:4].hex() != magic or int.from_bytes(header[4:8], "little") != 0b01:
            wrong.append(str(module.relative_to(LAYER)))
    assert wrong == []


def test_every_function_is_built_with_its_handler() -> None:
    built_template = (BUILD / "template.yaml").read_text()
    for folder in (ROOT / "functions").iterdir():
        if (folder / "app.py").exists():
            logical_id = "".join(part.capitalize() for part in folder.name.split("_")) + "Function"
            assert (BUILD / logical_id / "app.py").exists(), logical_id
            assert f"CodeUri: {logical_id}" in built_template


def test_the_pins_agree_with_the_development_constraints_and_pyproject() -> None:
    layer = _pins(REQUIREMENTS)
    constraints = _pins(ROOT / "constraints.txt")
    assert {name: constraints.get(name) for name in layer} == layer
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in runtime:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in layer, f"{name} is a runtime dependency but not in the layer"
        assert layer[name] in requirement.specifier
