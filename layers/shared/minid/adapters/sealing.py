"""Sealing (minid.domain.keys.Sealer): AES-256-GCM with a key derived from the pepper, where the function
holds the pepper; KMS under the data key, for what a function without the pepper must open."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from minid.domain.keys import Keyer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from mypy_boto3_kms import KMSClient

_NONCE_BYTES = 12


class AesGcmSealer:
    def __init__(self, keyer: Keyer) -> None:
        # imported here: the notifier uses this module for KmsSealer only, and cryptography costs ~7 ms
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        self._aead: AESGCM = AESGCM(keyer.sealing_key())

    def seal(self, plaintext: str, *, purpose: str, owner: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode(), f"{purpose}:{owner}".encode())
        return base64.urlsafe_b64encode(nonce + ciphertext).decode()

    def open(self, sealed: str, *, purpose: str, owner: str) -> str:
        data = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], f"{purpose}:{owner}".encode()).decode()


class KmsSealer:
    """KMS Encrypt and Decrypt under one key, bound to purpose and owner by the encryption context (which
    CloudTrail records: the owner is an id, never personal data). One call each way, for small values."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, plaintext: str, *, purpose: str, owner: str) -> str:
        sealed = self._client.encrypt(
            KeyId=self._key_id, Plaintext=plaintext.encode(), EncryptionContext={"purpose": purpose, "owner": owner}
        )["CiphertextBlob"]
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str, *, purpose: str, owner: str) -> str:
        opened = self._client.decrypt(
            KeyId=self._key_id,
            CiphertextBlob=base64.urlsafe_b64decode(sealed.encode()),
            EncryptionContext={"purpose": purpose, "owner": owner},
        )["Plaintext"]
        return opened.decode()
