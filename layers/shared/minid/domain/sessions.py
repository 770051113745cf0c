"""Sessions: what a successful login gives, and what every `me` route asks for.

A session token is 256 random bits, given to the client once and stored only as a keyed hash.
A session lasts 30 minutes without use (up to a minute less: a use is recorded to the minute) and 2
hours at most. Every session of a person ends when the account's epoch rises (a password change or reset, a
re-enrolment).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from minid.domain.accounts import UserAccount, Users
from minid.domain.errors import AuthenticationFailed
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import Keyer, PersonKey, Sealer
from minid.domain.random import RandomSource
from minid.domain.time import Clock
from minid.values import Value

ACR_SUBSTANTIAL = "idporten-loa-substantial"
TOKEN_BYTES = 32  # 256 bits
TOUCH_AFTER = timedelta(minutes=1)  # the idle clock is moved on at most once a minute


class Amr(StrEnum):
    """How the person authenticated, beside the password (ID-porten's amr values for MinID)."""

    ONE_TIME_CODE = "Minid-OTC"
    PIN = "Minid-PIN"
    TOTP = "Minid-TOTP"


class SessionPolicy(Value, frozen=True):
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=2)


class Unauthenticated(AuthenticationFailed):
    """No session, or one that has ended: the client logs in again."""

    detail = "Log in to continue: the session is missing, has expired or has ended."


class SessionEnded(Unauthenticated):
    """The request's token is no live session's (expired, ended, or never one): the client drops it and
    logs in again. (Told apart from a wrong code or password, to which the session lives on.)"""


REPLACED_SINCE_LOGIN = (
    "The session has ended: the password was changed or reset since this login, or the user enrolled again. "
    "Log in again, with the password now set."
)


class ReauthenticationRequired(AuthenticationFailed):
    """The session is live, but this change needs a login less than 15 minutes old."""

    detail = "Log in again to make this change: it needs a login from the last 15 minutes."


# A change that would let a stolen session keep the account (a contact, the authenticator app) needs a
# login this recent.
FRESH_LOGIN = timedelta(minutes=15)


def require_recent_login(session: Session, now: datetime) -> None:
    if now - session.auth_time >= FRESH_LOGIN:  # "less than 15 minutes old" (API.md)
        raise ReauthenticationRequired()


class Session(Value, frozen=True):
    __hidden__ = frozenset({"identity_sealed"})  # left out of repr

    key: str  # the keyed hash of the token
    person: PersonKey
    identity_sealed: str
    amr: tuple[Amr, ...]
    auth_time: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end
    epoch: int

    def idle_until(self, policy: SessionPolicy) -> datetime:
        """`last_seen_at` is moved on at most once a minute (TOUCH_AFTER): a use since may be up to a minute
        later than it. Counted from it, a session ends no later than 30 minutes after its last use (API.md;
        NIST SP 800-63B's reauthentication after 30 minutes of inactivity), and up to a minute sooner."""
        return min(self.last_seen_at + policy.idle, self.expires_at)


class IssuedSession(Value, frozen=True):
    __hidden__ = frozenset({"token"})  # left out of repr

    token: str
    session: Session
    expires_in: int


class SessionStore(Protocol):
    def get(self, key: str) -> Session | None: ...

    def touch(self, key: str, now: datetime) -> None: ...

    def delete(self, session: Session, events: Sequence[SecurityEvent]) -> None:
        """The session gone, with the events that record why, at once (nothing when it is gone already)."""
        ...


class Sessions:
    def __init__(
        self,
        *,
        store: SessionStore,
        users: Users,
        keyer: Keyer,
        sealer: Sealer,
        random: RandomSource,
        clock: Clock,
        policy: SessionPolicy | None = None,
    ) -> None:
        self._clock = clock
        self._store = store
        self._users = users
        self._keyer = keyer
        self._sealer = sealer
        self._random = random
        self.policy = policy or SessionPolicy()

    def new(
        self, person: PersonKey, identity_number: str, amr: tuple[Amr, ...], epoch: int, now: datetime
    ) -> IssuedSession:
        """A new session and its token; stored by the login's completion, with the rest of it."""
        token = base64.urlsafe_b64encode(bytes.fromhex(self._random.token_hex(TOKEN_BYTES))).rstrip(b"=").decode()
        session = Session(
            key=self._keyer.session_key(token),
            person=person,
            identity_sealed=self._sealer.seal(identity_number, purpose="session", owner=person),
            amr=amr,
            auth_time=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute,
            epoch=epoch,
        )
        return IssuedSession(token, session, int(self.policy.absolute.total_seconds()))

    def authenticate(self, token: str | None) -> Session:
        """The live session of a bearer token, or Unauthenticated. Using it keeps it alive. Of the account,
        its epoch alone is read."""
        session, now = self._stored(token)
        epoch = self._users.session_epoch(session.person)
        if epoch is None:
            raise self._ended(session)
        return self._held(session, epoch, now)

    def authenticated(self, token: str | None) -> tuple[Session, UserAccount]:
        """The live session of a bearer token and its account as read to check it, or Unauthenticated."""
        session, now = self._stored(token)
        account = self._users.find(session.person)
        if account is None:
            raise self._ended(session)
        return self._held(session, account.session_epoch, now), account

    def _stored(self, token: str | None) -> tuple[Session, datetime]:
        """The token's session, stored and not idle past its time; and the time it was looked at."""
        now = self._clock.now()
        if not token:
            raise Unauthenticated()
        if len(token) > 128 or not token.isascii():  # none of ours (base64url): not hashed, not looked up
            raise SessionEnded()
        session = self._store.get(self._keyer.session_key(token))
        if session is None or now >= session.idle_until(self.policy):
            raise SessionEnded()
        return session, now

    def _held(self, session: Session, epoch: int, now: datetime) -> Session:
        """The session, if the account's epoch is still the session's; kept alive."""
        if epoch != session.epoch:  # told why, to the token's holder alone: a change retried after its
            # answer was lost (a 204 of a password change) learns here that it was made
            raise self._ended(session, REPLACED_SINCE_LOGIN if epoch > session.epoch else None)
        if now - session.last_seen_at >= TOUCH_AFTER:
            self._store.touch(session.key, now)
        return session

    def _ended(self, session: Session, detail: str | None = None) -> SessionEnded:
        """The session deleted, ended by the account (its password changed, say, or the account gone)."""
        self._store.delete(session, events=())
        return SessionEnded(detail)

    def identity_number(self, session: Session) -> str:
        return self._sealer.open(session.identity_sealed, purpose="session", owner=session.person)

    def end(self, session: Session) -> None:
        """Log out: the session ends, and the person's history says so."""
        logged_out = SecurityEvent(SecurityEventType.LOGGED_OUT, self._clock.now(), str(uuid.uuid4()))
        self._store.delete(session, events=(logged_out,))
