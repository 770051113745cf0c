"""Once-only actions with Powertools idempotency (DynamoDB), for requests with an Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from minid.adapters.aws_errors import Busy
from minid.domain.letters.model import ONCE_ONLY_FOR

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

KEPT_FOR_SECONDS = int(ONCE_ONLY_FOR.total_seconds())

Action = Callable[[], dict[str, str]]


class PowertoolsOnceOnly:
    """The key (never holding personal data in clear: the person is a keyed hash) is hashed with
    SHA-256 into the record's id; the action's result is kept for a day and returned to repeats.

    Powertools' idempotency is loaded at the first keyed action, not when the function starts: its
    DynamoDB layer imports boto3 (some 15 ms, and 30 with what comes with it), and most of the
    function's requests (a person's letters, a block, an order without a key) have no use for it."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, name: str) -> None:
        self._client = client
        self._table_name = table_name
        self._name = name
        self._context: LambdaContext | None = None
        self._made: tuple[IdempotencyConfig, Callable[..., dict[str, str]]] | None = None

    def use_lambda_context(self, context: LambdaContext) -> None:
        """The invocation's deadline: an in-progress record lapses with it, so a crash is retried."""
        self._context = context
        if self._made is not None:
            self._made[0].register_lambda_context(context)

    def _once_only_run(self) -> Callable[..., dict[str, str]]:
        if self._made is None:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415  (see the class)
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            persistence = DynamoDBPersistenceLayer(table_name=self._table_name, boto3_client=self._client)
            config = IdempotencyConfig(expires_after_seconds=KEPT_FOR_SECONDS, hash_function="sha256")
            if self._context is not None:
                config.register_lambda_context(self._context)

            def run(key: dict[str, str], action: Action) -> dict[str, str]:
                return action()

            run.__qualname__ = run.__name__ = self._name  # the record's id names the action, not this wrapper
            made = idempotent_function(data_keyword_argument="key", persistence_store=persistence, config=config)(run)
            self._made = (config, made)
        return self._made[1]

    def __call__(self, key: Mapping[str, str], action: Action) -> dict[str, str]:
        """The store's AWS error is raised as itself (a 503 when it is brief), and so is the invocation's
        deadline refusing the store's call (minid.deadline: after an action refused by it, Powertools'
        removal of the record is refused too). A repeat that finds the first still in progress does the
        action itself: the action is safe to repeat (see OnceOnly), and a first whose record was left in
        progress by a failure must not block its retry."""
        run = self._once_only_run()
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415  (loaded by now)
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        try:
            result: dict[str, str] = run(key=dict(key), action=action)
        except IdempotencyPersistenceLayerError as error:
            if isinstance(error.__cause__, ClientError | BotoCoreError | Busy):
                raise error.__cause__ from error
            raise
        except IdempotencyAlreadyInProgressError:
            return action()
        return result
