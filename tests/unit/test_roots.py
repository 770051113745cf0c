"""The functions' certificate authorities as a hashed directory (local/roots.py, minid.wiring.ROOTS):
each file must be named as OpenSSL hashes its subject, or OpenSSL never finds it and every call fails.
Held to OpenSSL's own lookup: a handshake that trusts a directory finds a root only under that name."""

from __future__ import annotations

import ssl
import tempfile
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from local.roots import botocore_bundle, certificates, hashed, subject_hash
from local.tls import self_signed
from minid.wiring import ROOTS


def _trusted(directory: Path, pem: str, key: bytes) -> bool:
    """Whether a client trusting `directory` (a hashed directory) accepts a server presenting `pem`."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "server.pem").write_text(pem)
        (Path(folder) / "server.key").write_bytes(key)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(Path(folder) / "server.pem", Path(folder) / "server.key")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False  # the chain is what is looked at here
    client_context.load_verify_locations(capath=str(directory))
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server)
    server = server_context.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError:
                return False
        if client.version() and server.version():
            return True
    raise AssertionError("the handshake did not end")


def _named(directory: Path, subject: x509.Name, hash_of: bytes | None = None) -> tuple[Path, str, bytes]:
    """An authority named `subject` in `directory` under the hash of its subject (or of `hash_of`)."""
    pem, key = self_signed(subject)
    digest = subject_hash(hash_of or ssl.PEM_cert_to_DER_cert(pem))
    (directory / f"{digest:08x}.0").write_text(pem)
    return directory, pem, key


CN, ORG, OU, C, EMAIL = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COUNTRY_NAME,
    NameOID.EMAIL_ADDRESS,
)
NAMES = {
    "printable": [x509.NameAttribute(C, "NO"), x509.NameAttribute(ORG, "Digdir", _ASN1Type.PrintableString)],
    "utf-8 beyond ascii, upper case": [x509.NameAttribute(CN, "Ærlig ØST Åpen Root CA")],
    "spaces at the ends and runs of them": [x509.NameAttribute(CN, "  Root \t  CA\n  G2  ")],
    "bmp string": [x509.NameAttribute(CN, "Bmp Root Ø", _ASN1Type.BMPString)],
    "universal string": [x509.NameAttribute(CN, "Universal Root", _ASN1Type.UniversalString)],
    "t61 string, beyond ascii": [x509.NameAttribute(CN, "Tæst RØØT", _ASN1Type.T61String)],
    "ia5 string": [x509.NameAttribute(EMAIL, "Root@Example.NO")],
    "long, its length in more than a byte": [x509.NameAttribute(OU, "x" * 60), x509.NameAttribute(ORG, "Y" * 300)],
}


@pytest.mark.parametrize("attributes", NAMES.values(), ids=NAMES.keys())
def test_openssl_finds_an_authority_under_its_subject_hash(
    attributes: list[x509.NameAttribute[str]], tmp_path: Path
) -> None:
    directory, pem, key = _named(tmp_path, x509.Name(attributes))
    assert _trusted(directory, pem, key)


def test_a_relative_name_of_several_attributes_is_hashed_in_the_order_of_its_canonical_form(tmp_path: Path) -> None:
    """DER orders a SET by encoding: "b" (UTF8String) before "A" (PrintableString) by their tags; their
    canonical forms ("a" and "b", both UTF8String) the other way round."""
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(OU, "b"), x509.NameAttribute(OU, "A", _ASN1Type.PrintableString)]
            )
        ]
    )
    directory, pem, key = _named(tmp_path, subject)
    assert _trusted(directory, pem, key)


def test_openssl_does_not_find_an_authority_under_another_name(tmp_path: Path) -> None:
    """The check above can fail: the same authority under the hash of another subject is not found."""
    other, _ = self_signed(x509.Name([x509.NameAttribute(CN, "Another Root")]))
    directory, pem, key = _named(tmp_path, x509.Name([x509.NameAttribute(CN, "Root")]), ssl.PEM_cert_to_DER_cert(other))
    assert not _trusted(directory, pem, key)


def test_every_root_botocore_trusts_is_found_under_its_name(tmp_path: Path) -> None:
    """An authority named as each of botocore's roots (the same subject, encoded alike) is found under
    the name the roots' directory gives that root."""
    tested = 0
    for name, pem in hashed(certificates(botocore_bundle())).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # some old roots have serial numbers cryptography frowns on
            subject = x509.load_pem_x509_certificate(pem.encode()).subject
        fake, key = self_signed(subject)
        assert subject_hash(ssl.PEM_cert_to_DER_cert(fake)) == subject_hash(ssl.PEM_cert_to_DER_cert(pem))
        directory = tmp_path / name
        directory.mkdir()
        (directory / f"{name.rsplit('.', 1)[0]}.0").write_text(fake)
        assert _trusted(directory, fake, key), name
        tested += 1
    assert tested == botocore_bundle().count("-----BEGIN CERTIFICATE-----") > 100  # every one, read apart


def test_the_roots_directory_is_botocore_s_bundle_hashed() -> None:
    """`make roots` after upgrading botocore; the layer's own botocore is held to it in tests/contract."""
    expected = hashed(certificates(botocore_bundle()))
    assert len(expected) == botocore_bundle().count("-----BEGIN CERTIFICATE-----")
    assert {p.name: p.read_text() for p in Path(ROOTS).iterdir()} == expected
