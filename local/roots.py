"""The certificate authorities botocore trusts, as a directory OpenSSL reads one certificate at a time.

botocore hands its CA bundle (botocore/cacert.pem: 126 certificates, 220 KB) to OpenSSL as a file at
every new connection, and OpenSSL parses all of it each time: some 20 ms, at the first call of every
cold start and at every connection after (boto/botocore#3171, open as of this writing). A directory of
one file per certificate, each named by the hash of its subject (OpenSSL's "hashed directory", what
`openssl rehash` makes), is read lazily: at a handshake, OpenSSL opens the file of the one root it looks
for. Same certificates, same trust, nothing parsed ahead (minid.wiring gives it to the functions'
clients).

`python -m local.roots` writes layers/shared/minid/roots from the botocore installed (`make roots`, after
an upgrade); a test fails when it no longer matches the botocore the layer carries.

The subject hash is written here: the standard library and cryptography do not expose OpenSSL's
(X509_NAME_hash_ex), and no maintained library on PyPI gives it without binding OpenSSL anew. The tests
hold it to OpenSSL's own lookup: a handshake finds a root only under the name OpenSSL hashes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import botocore.httpsession

LAYER_ROOTS = Path(__file__).resolve().parent.parent / "layers" / "shared" / "minid" / "roots"
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----\n", re.S)

# The string types OpenSSL compares in a canonical form (ASN1_MASK_CANON), and how their bytes read:
# UTF8String, PrintableString, T61String, IA5String, VisibleString, UniversalString, BMPString.
_CANONICAL = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1A: "latin-1"}
_CANONICAL |= {0x1C: "utf-32-be", 0x1E: "utf-16-be"}
_SPACE = b" \t\n\v\f\r"  # OpenSSL's ossl_isspace
_UTF8_STRING, _SEQUENCE, _SET = 0x0C, 0x30, 0x31


def subject_hash(certificate_der: bytes) -> int:
    """OpenSSL's hash of a certificate's subject (X509_subject_name_hash): the first four bytes, little
    endian, of the SHA-1 of the name's canonical form: each relative name a DER SET of its attributes,
    their string values as UTF8String with ASCII letters lowercased, spaces at either end dropped and
    each run of spaces within made one."""
    ((_, _, certificate),) = _tlvs(certificate_der)
    tbs = next(_tlvs(certificate))[2]
    fields = list(_tlvs(tbs))
    if fields[0][0] == 0xA0:  # [0] version, present from v2 on
        fields = fields[1:]
    subject = fields[4][2]  # serialNumber, signature, issuer, validity, subject
    canonical = b""
    for _, _, relative_name in _tlvs(subject):
        attributes = []
        for _, _, attribute in _tlvs(relative_name):
            (_, oid, _), (tag, value, content) = _tlvs(attribute)
            if tag in _CANONICAL:
                value = _der(_UTF8_STRING, _canonical(content.decode(_CANONICAL[tag]).encode()))
            attributes.append(_der(_SEQUENCE, oid + value))
        canonical += _der(_SET, b"".join(sorted(attributes)))  # DER orders a SET OF by encoding
    return int.from_bytes(hashlib.sha1(canonical, usedforsecurity=False).digest()[:4], "little")


def _canonical(value: bytes) -> bytes:
    """OpenSSL's asn1_string_canon on UTF-8 bytes: only ASCII is touched."""
    value = value.strip(_SPACE)
    out, i = bytearray(), 0
    while i < len(value):
        if value[i] in _SPACE:
            out.append(0x20)
            while value[i] in _SPACE:
                i += 1
            continue
        out.append(value[i] | 0x20 if 0x41 <= value[i] <= 0x5A else value[i])
        i += 1
    return bytes(out)


def _tlvs(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """The DER elements in `data`, in order: (tag, whole element, content)."""
    at = 0
    while at < len(data):
        tag, length, start = data[at], data[at + 1], at + 2
        if length & 0x80:
            size = length & 0x7F
            length, start = int.from_bytes(data[start : start + size], "big"), start + size
        yield tag, data[at : start + length], data[start : start + length]
        at = start + length


def _der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes((tag, len(content))) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def certificates(bundle: str) -> list[str]:
    """The PEM certificates of a bundle, in its order."""
    return _PEM.findall(bundle)


def hashed(pems: list[str]) -> dict[str, str]:
    """Each certificate under its file name in a hashed directory: its subject's hash, then `.0`, `.1`
    where subjects share a hash (a root renewed under the same name, or a collision)."""
    files: dict[str, str] = {}
    for pem in pems:
        digest = f"{subject_hash(ssl.PEM_cert_to_DER_cert(pem)):08x}"
        files[f"{digest}.{sum(name.startswith(digest + '.') for name in files)}"] = pem
    return files


def write(files: Mapping[str, str], directory: Path) -> None:
    """`files` (hashed) in `directory`, made anew: what it held is removed, if it held a hashed
    directory's files only (a path given by mistake is refused, not emptied)."""
    if directory.exists():
        strays = [p.name for p in directory.iterdir() if not _HASHED_NAME.fullmatch(p.name)]
        if strays:
            raise SystemExit(f"{directory} holds files other than certificates ({', '.join(strays[:3])}): not replaced")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, pem in files.items():
        (directory / name).write_text(pem)


def botocore_bundle() -> str:
    """The bundle botocore trusts where certifi is not installed, as in the layer."""
    return Path(botocore.httpsession.DEFAULT_CA_BUNDLE).read_text()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else LAYER_ROOTS
    write(hashed(certificates(botocore_bundle())), target)
    print(f"{len(list(target.iterdir()))} certificates in {target}")
