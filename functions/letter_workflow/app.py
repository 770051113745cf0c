"""The tasks of the PIN-letter workflow (statemachines/pin_letter.asl.json), one Lambda for all.

The input names the task and the letter, nothing else. A transient AWS error is raised as
DependencyUnavailable, which the state machine retries with backoff; any other error is caught there,
and the letter marked failed (raised as TaskFailed, under its own name and without its message).
"""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import attempts, deadline, observability, wiring
from minid.adapters.aws_errors import error_name, is_transient
from minid.domain.letters.model import Activation, PrintDocument, RecipientOutcome
from minid.domain.letters.workflow import DocumentLeft, KeptChanging, LetterWorkflowTasks, UnsentDocumentLeft
from minid.domain.notices import NoticeKind
from minid.domain.random import UUID4_PATTERN

logger = observability.logger()


class DependencyUnavailable(Exception):
    """AWS was briefly unavailable; the state machine retries the task."""


class TaskFailed(Exception):
    """A task failed for good. Raised under the name of the error it stands for (the state machine
    catches, and tells the operators, by name), but without its message or cause: an error's message
    may quote what it read (a register's field, say), and Step Functions keeps what a task raised in the
    execution's history. The error itself, masked, is in the function's log."""


def failed(error: Exception, letter_id: str) -> TaskFailed:
    named: type[TaskFailed] = type(type(error).__name__, (TaskFailed,), {"__module__": __name__})
    return named(f"See the function's log for letter {letter_id}.")


class Task(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A task's input, checked by msgspec as the settings are: this function answers no HTTP request
    and needs pydantic for nothing else (about 50 ms of its cold start)."""

    task: Literal["validate-recipient", "prepare-letter", "activate-letter", "mark-failed", "notify"]
    # 36 characters: the pattern's "$" (re.search) would also take a trailing newline
    letter_id: Annotated[str, msgspec.Meta(min_length=36, max_length=36, pattern=UUID4_PATTERN)]
    notice: NoticeKind | None = None
    error: Annotated[str, msgspec.Meta(max_length=200)] | None = None


@cache
def services() -> LetterWorkflowTasks:
    return wiring.letter_workflow(os.environ)


def run(task: Task) -> dict[str, Any]:
    tasks = services()
    if task.task == "validate-recipient":
        outcome = tasks.validate_recipient(task.letter_id)
        if outcome is RecipientOutcome.UNPRINTABLE:  # the register's entry, or the font, to be seen to
            logger.warning("Letter refused: the name or address cannot be printed")  # (the letter's id alone)
            observability.count("LettersUnprintable")  # LettersUnprintableAlarm
        return {"outcome": outcome.value}
    if task.task == "prepare-letter":
        document = prepared(tasks, task.letter_id)
        if document is None:
            return {"outcome": "cancelled"}
        return {
            "outcome": "ready",
            "bucket": document.bucket,
            "pdf": document.pdf,
            "manifest": document.manifest,
        }
    if task.task == "activate-letter":
        return {"outcome": activated(tasks, task.letter_id).value}
    if task.task == "mark-failed":
        tasks.mark_failed(task.letter_id, task.error or "unknown")
        return {"outcome": "failed"}
    if task.notice is None:
        raise ValueError("a notify task names its notice")
    tasks.notify(task.letter_id, task.notice)
    return {"outcome": "queued"}


def prepared(tasks: LetterWorkflowTasks, letter_id: str) -> PrintDocument | None:
    """The letter's document; or, its codes' write failing, that failure raised for the task to be tried
    again, and a document made for it and left (not deleted) told to the operators: its codes in clear,
    for the bucket's expiry. (Named by the letter alone, whose id the log has: a prefix's random part
    may read as a number to the log's masking.)"""
    try:
        return tasks.prepare_letter(letter_id)
    except UnsentDocumentLeft as left:
        logger.error(
            "Print document of a failed write not deleted",
            extra={"error": error_name(left.__cause__), "held_unknown": left.held_unknown},
        )
        observability.count("PrintDocumentsLeft")  # PrintDocumentsLeftAlarm
        raise left.error from None


def activated(tasks: LetterWorkflowTasks, letter_id: str) -> Activation:
    """The activation; its print document deleted, or tried again (a transient error, for a while), or left
    for the bucket's expiry and the operators (any other: AccessDenied, say; or a transient one that has
    lasted), the letter posted all the same."""
    try:
        return tasks.activate(letter_id)
    except DocumentLeft as left:
        cause = left.__cause__
        if left.retry and isinstance(cause, Exception) and is_transient(cause):
            raise cause from None
        logger.error("Print document not deleted", extra={"error": error_name(cause)})
        observability.count("PrintDocumentsLeft")  # PrintDocumentsLeftAlarm
        return left.activation


# Preparing a letter: after its codes' write failed (for want of time, say), the clean-up of its document (a
# read of the letter, a delete) is made whatever the deadline (minid.deadline.exempt). Kept after the task's
# deadline: an attempt of each at its timeouts, and the time held after the exempt calls; refused there
# (OutOfTime), the document left is told (UnsentDocumentLeft), rather than Lambda stopping the function in
# the clean-up, nothing told.
CLEANUP_KEPT_SECONDS = deadline.kept_for(2 * attempts.ATTEMPT_SECONDS)


@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = msgspec.convert(event, Task)
    logger.append_keys(task=task.task, letter_id=task.letter_id)
    kept = CLEANUP_KEPT_SECONDS if task.task == "prepare-letter" else 0
    try:
        with deadline.within(context, kept_seconds=kept):
            return run(task)
    except Exception as error:
        if is_transient(error) or isinstance(error, KeptChanging):
            raise DependencyUnavailable(type(error).__name__) from error
        logger.exception("Task failed", extra={"error": type(error).__name__})
        raise failed(error, task.letter_id) from None


coldstart.loaded()
