"""AES-256-GCM (the `cryptography` library) with a key derived from the pepper."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minid.domain.keys import Keyer

_NONCE_BYTES = 12


class AesGcmSealer:
    def __init__(self, keyer: Keyer) -> None:
        self._aead = AESGCM(keyer.sealing_key())

    def seal(self, plaintext: str, *, purpose: str, owner: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode(), f"{purpose}:{owner}".encode())
        return base64.urlsafe_b64encode(nonce + ciphertext).decode()

    def open(self, sealed: str, *, purpose: str, owner: str) -> str:
        data = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], f"{purpose}:{owner}".encode()).decode()
