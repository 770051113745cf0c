"""The pepper, read once from Secrets Manager at cold start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minid.domain.keys import Pepper

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def load_pepper(client: SecretsManagerClient, secret_id: str) -> Pepper:
    response = client.get_secret_value(SecretId=secret_id)
    return Pepper(response["SecretString"].encode())
