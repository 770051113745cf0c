"""Once-only actions with Powertools idempotency (DynamoDB), for requests with an Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from botocore.exceptions import BotoCoreError, ClientError

from minid.domain.letters.ordering import ONCE_ONLY_FOR

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

KEPT_FOR_SECONDS = int(ONCE_ONLY_FOR.total_seconds())


class PowertoolsOnceOnly:
    """The key (never holding personal data in clear: the person is a keyed hash) is hashed with
    SHA-256 into the record's id; the action's result is kept for a day and returned to repeats."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, name: str) -> None:
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        config = IdempotencyConfig(expires_after_seconds=KEPT_FOR_SECONDS, hash_function="sha256")
        self._config = config

        def run(key: dict[str, str], action: Callable[[], dict[str, str]]) -> dict[str, str]:
            return action()

        run.__qualname__ = run.__name__ = name  # the record's id names the action, not this wrapper
        self._run = idempotent_function(data_keyword_argument="key", persistence_store=persistence, config=config)(run)

    def use_lambda_context(self, context: LambdaContext) -> None:
        """The invocation's deadline: an in-progress record lapses with it, so a crash is retried."""
        self._config.register_lambda_context(context)

    def __call__(self, key: Mapping[str, str], action: Callable[[], dict[str, str]]) -> dict[str, str]:
        """The store's AWS error is raised as itself (a 503 when it is brief). A repeat that finds the
        first still in progress does the action itself: the action is safe to repeat (see OnceOnly),
        and a first whose record was left in progress by a failure must not block its retry."""
        try:
            result: dict[str, str] = self._run(key=dict(key), action=action)
        except IdempotencyPersistenceLayerError as error:
            if isinstance(error.__cause__, ClientError | BotoCoreError):
                raise error.__cause__ from error
            raise
        except IdempotencyAlreadyInProgressError:
            return action()
        return result
