"""moto's server over HTTPS, for what must make real TLS connections: the benchmark's fresh interpreters
(their first call loads what the CA store needs and makes a handshake, as on Lambda) and the test of the
functions' trust (minid.wiring: a certificate authority outside the trusted ones is refused).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local.roots import hashed, write


@dataclass(frozen=True)
class HttpsMoto:
    endpoint: str  # https://127.0.0.1:port
    certificate: Path  # the server's own (self-signed, for 127.0.0.1), PEM: a bundle for clients of botocore's own
    trust: Path  # a hashed directory: the layer's roots and the server's certificate (AWS_CA_BUNDLE)


@contextmanager
def https_moto(roots: Path) -> Iterator[HttpsMoto]:
    """moto's server (a thread of this process) over HTTPS with a certificate of its own, and a hashed
    directory trusting `roots` (a hashed directory: minid.wiring.ROOTS) and that certificate."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415  # flask is needed only here
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    with tempfile.TemporaryDirectory() as folder:
        certificate, key = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), "127.0.0.1")
        trust = Path(folder) / "trust"
        write(hashed([root.read_text() for root in sorted(roots.iterdir())] + [certificate]), trust)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        (Path(folder) / "server.pem").write_text(certificate)
        (Path(folder) / "server.key").write_bytes(key)
        context.load_cert_chain(Path(folder) / "server.pem", Path(folder) / "server.key")
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler, ssl_context=context)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield HttpsMoto(f"https://127.0.0.1:{server.server_address[1]}", Path(folder) / "server.pem", trust)
        finally:
            server.shutdown()
            thread.join()


def self_signed(subject: x509.Name, address: str | None = None) -> tuple[str, bytes]:
    """A certificate authority named `subject`, signing itself (PEM), and its key, valid for a day; for
    a server at `address` (an IP address) where one is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if address is not None:
        names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))])
        builder = builder.add_extension(names, critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    return pem, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
