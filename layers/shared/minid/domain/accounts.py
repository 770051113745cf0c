"""MinID user accounts: a person's password, status and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from minid.domain.keys import PersonKey


class AccountStatus(StrEnum):
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class UserAccount:
    person: PersonKey
    status: AccountStatus
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
    # Every session carries the epoch it was issued in; raising the epoch ends them all.
    session_epoch: int = 0


class Users(Protocol):
    def find(self, person: PersonKey) -> UserAccount | None: ...
