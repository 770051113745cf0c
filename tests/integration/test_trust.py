"""The functions' clients verify AWS's certificates against a hashed directory of certificate
authorities (minid.wiring.ROOTS: botocore's own, one file each, read at a handshake as needed) rather
than botocore's bundle file, which OpenSSL parses whole at every new connection. Over real HTTPS, to
moto's server with a certificate of its own: trusted where the directory has it, refused where not."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.httpsession
import botocore.session
import pytest
from botocore.exceptions import ClientError, SSLError

from local.aws import REGION, use_fake_credentials
from local.tls import HttpsMoto, https_moto
from minid import wiring
from minid.adapters.notices import SnsSmsSender


@pytest.fixture(scope="module")
def moto() -> Iterator[HttpsMoto]:
    with https_moto(Path(wiring.ROOTS)) as server:
        yield server


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, moto: HttpsMoto) -> pytest.MonkeyPatch:
    environ: dict[str, str] = {}
    use_fake_credentials(environ, endpoint=moto.endpoint)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):  # no ca_bundle or proxy of a developer's
        monkeypatch.setenv(name, "/nonexistent")
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_local_stack_s_clients_go_to_no_endpoint_of_the_developer_s(tmp_path: Path) -> None:
    """moto answers AWS's own addresses only: an endpoint set for DynamoDB Local, say, in the shell or in
    ~/.aws/config, would take the local stack's calls there."""
    environ = {"AWS_PROFILE": "work", "AWS_ENDPOINT_URL": "http://localhost:4566"}
    environ |= {"AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000", "PATH": "/usr/bin"}
    use_fake_credentials(environ)
    assert not [name for name in environ if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE"]
    assert environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] == "true"
    assert environ["PATH"] == "/usr/bin"
    given = dict(environ)
    use_fake_credentials(given, endpoint="https://127.0.0.1:9999")  # moto's server, for every service
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" not in given
    with mock.patch.dict(os.environ, given | {"AWS_CONFIG_FILE": "/nonexistent"}, clear=True):
        assert botocore.session.Session().create_client("dynamodb").meta.endpoint_url == "https://127.0.0.1:9999"
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://localhost:8000\n")
    with mock.patch.dict(os.environ, environ | {"AWS_CONFIG_FILE": str(config)}, clear=True):
        client = botocore.session.Session().create_client("dynamodb")
    assert client.meta.endpoint_url == f"https://dynamodb.{REGION}.amazonaws.com"


@pytest.fixture
def bundles_loaded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The bundle files OpenSSL is given to parse (load_verify_locations with a file)."""
    loaded: list[Any] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, cafile: Any = None, capath: Any = None, cadata: Any = None) -> None:
        if cafile is not None or cadata is not None:
            loaded.append(cafile or cadata)
        load(self, cafile, capath, cadata)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    return loaded


@pytest.fixture
def no_certifi(environment: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """As in the layer: botocore trusts its own bundle (here certifi, a test dependency, is importable)."""
    environment.setattr(botocore.httpsession, "where", lambda: botocore.httpsession.DEFAULT_CA_BUNDLE)
    return environment


def test_by_default_a_client_trusts_the_roots_directory_and_parses_no_bundle(
    no_certifi: pytest.MonkeyPatch, moto: HttpsMoto, bundles_loaded: list[Any]
) -> None:
    no_certifi.setattr(wiring, "ROOTS", str(moto.trust))  # the roots, and the server's certificate
    wiring.client("dynamodb").list_tables()
    # another service's client, its own connection (an operation the functions call: their clients have
    # no other): refused by moto, but over TLS, its handshake made
    with pytest.raises(ClientError):
        wiring.client("sqs").send_message(QueueUrl=f"{moto.endpoint}/123456789012/none", MessageBody="x")
    assert bundles_loaded == []


def test_a_server_whose_authority_is_not_in_the_directory_is_refused(no_certifi: pytest.MonkeyPatch) -> None:
    """The roots alone: moto's self-signed certificate is not among them."""
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        wiring.client("dynamodb").list_tables()


def test_where_botocore_trusts_another_bundle_than_its_own_it_is_left_to_botocore(
    environment: pytest.MonkeyPatch, moto: HttpsMoto, bundles_loaded: list[Any]
) -> None:
    """certifi's, where it can be imported (not in the layer): the roots are botocore's own, and trusting
    them instead would trust other authorities than botocore does."""
    environment.setattr(wiring, "ROOTS", str(moto.trust))
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        wiring.client("dynamodb").list_tables()
    assert set(bundles_loaded) == {botocore.httpsession.where()} != {botocore.httpsession.DEFAULT_CA_BUNDLE}


def test_a_directory_named_by_aws_ca_bundle_is_trusted_instead(
    environment: pytest.MonkeyPatch, moto: HttpsMoto
) -> None:
    environment.setenv("AWS_CA_BUNDLE", str(moto.trust))
    wiring.client("dynamodb").list_tables()
    environment.setenv("AWS_CA_BUNDLE", wiring.ROOTS)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        wiring.client("dynamodb").list_tables()


def test_a_bundle_file_named_by_aws_ca_bundle_is_botocore_s_to_load(
    environment: pytest.MonkeyPatch, moto: HttpsMoto, bundles_loaded: list[Any]
) -> None:
    environment.setenv("AWS_CA_BUNDLE", str(moto.certificate))
    wiring.client("dynamodb").list_tables()
    assert bundles_loaded == [str(moto.certificate)]


def test_the_host_name_is_still_checked(no_certifi: pytest.MonkeyPatch, moto: HttpsMoto) -> None:
    """The server's certificate names 127.0.0.1, not localhost."""
    no_certifi.setattr(wiring, "ROOTS", str(moto.trust))
    no_certifi.setenv("AWS_ENDPOINT_URL", moto.endpoint.replace("127.0.0.1", "localhost"))
    with pytest.raises(SSLError, match="hostname 'localhost' doesn't match"):
        wiring.client("dynamodb").list_tables()


def test_a_send_refused_at_the_handshake_on_the_certificate_sent_nothing(
    no_certifi: pytest.MonkeyPatch, moto: HttpsMoto
) -> None:
    """SNS's certificate refused (a CA bundle amiss, a proxy intercepting): no request went, as botocore
    raises it over a real handshake (its SSLError holding urllib3's, holding ssl's). The notifier's send is
    not taken as one that may have gone out: the SDK's retries are made, and a reset's code may be given
    up on for its e-mail."""
    sender = SnsSmsSender(wiring.client("sns", delivered=True), "MinID")
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        sender.send_sms("+4791234589", "Koden din er 123456")
    assert SnsSmsSender.may_give_up_on(raised.value)
