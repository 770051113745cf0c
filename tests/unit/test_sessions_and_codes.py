"""Session lifetimes, TOTP time steps, per-client windows and sealing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from cryptography.exceptions import InvalidTag
from pydantic import TypeAdapter, ValidationError

from minid.adapters.dynamodb import iso
from minid.adapters.sealing import AesGcmSealer
from minid.api.models import SixDigits
from minid.domain import codes
from minid.domain.codes import RateLimited, try_given_back_on_failure, written_by_this_resend
from minid.domain.keys import Keyer, Pepper, PersonKey
from minid.domain.letters import model as letters
from minid.domain.notices import Channel
from minid.domain.rate_limits import ClientLimits, Hit, Limit
from minid.domain.sessions import ReauthenticationRequired, Session, SessionPolicy, require_recent_login
from minid.domain.totp import matching_step, new_secret, provisioning_uri

NOW = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)
KEYER = Keyer(Pepper(b"p" * 32))


def session(last_seen: datetime, expires: datetime) -> Session:
    return Session("k", PersonKey("p"), "sealed", (), NOW, last_seen, expires, 0)


def test_a_session_ends_at_idle_or_absolute_whichever_is_first() -> None:
    policy = SessionPolicy()
    # a use recorded at NOW ends it 30 minutes on, at most (a use since, up to a minute later, is not recorded)
    assert session(NOW, NOW + timedelta(hours=2)).idle_until(policy) == NOW + timedelta(minutes=30)
    late = session(NOW + timedelta(minutes=100), NOW + timedelta(hours=2))
    assert late.idle_until(policy) == NOW + timedelta(hours=2)


def test_a_change_needs_a_login_less_than_15_minutes_old() -> None:
    logged_in = session(NOW, NOW + timedelta(hours=2))  # auth_time NOW
    require_recent_login(logged_in, NOW + timedelta(minutes=15) - timedelta(microseconds=1))
    with pytest.raises(ReauthenticationRequired):
        require_recent_login(logged_in, NOW + timedelta(minutes=15))  # 15 minutes old is not less than 15


def test_totp_accepts_one_step_either_side_and_says_which() -> None:
    secret = new_secret()
    totp = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    for offset in (-1, 0, 1):
        assert matching_step(secret, totp.at((step + offset) * 30), NOW) == step + offset
    for offset in (-2, 2):
        assert matching_step(secret, totp.at((step + offset) * 30), NOW) is None
    assert matching_step(secret, "12345", NOW) is None


def test_the_otpauth_uri_names_minid_and_the_label_only() -> None:
    secret = new_secret()
    assert len(secret) == 32  # 160 bits
    uri = provisioning_uri(secret, "Kari")
    assert uri == f"otpauth://totp/MinID:Kari?secret={secret}&issuer=MinID"


@dataclass
class Counter:
    counts: dict[str, int] = field(default_factory=dict)

    def hit(self, hit: Hit) -> bool:
        if self.counts.get(hit.counter, 0) >= hit.max_hits:
            return False
        self.counts[hit.counter] = self.counts.get(hit.counter, 0) + 1
        return True

    def give_back(self, hit: Hit) -> None:
        self.counts[hit.counter] = max(0, self.counts.get(hit.counter, 0) - 1)


@dataclass
class FailingOnce(Counter):
    """A counter whose first give-back fails (DynamoDB briefly down)."""

    failed: bool = False

    def give_back(self, hit: Hit) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("gone")
        super().give_back(hit)


def test_hits_given_back_are_each_given_back_whatever_another_s_did() -> None:
    """The person's hit (counted last) is given back first; its give-back failing leaves the client's made,
    and is raised."""
    counter = FailingOnce()
    limits = ClientLimits(counter, KEYER)
    by_client, person = limits.code_sent("192.0.2.1", NOW), limits.code_to_person("contact", PersonKey("p" * 64), NOW)
    with pytest.raises(ConnectionError):
        limits.give_back([by_client, person])
    assert (counter.counts[by_client.counter], counter.counts[person.counter]) == (0, 1)
    limits.give_back([person])
    assert counter.counts[person.counter] == 0


def test_a_client_is_limited_per_window_and_told_when_to_come_back() -> None:
    limits = ClientLimits(Counter(), KEYER)
    limit = Limit("test", 2, timedelta(minutes=1))
    limits.hit(limit, "192.0.2.1", NOW)
    limits.hit(limit, "192.0.2.1", NOW)
    with pytest.raises(RateLimited) as held:
        limits.hit(limit, "192.0.2.1", NOW)
    assert held.value.retry_after == 51  # the window ends at 12:01:00
    limits.hit(limit, "192.0.2.2", NOW)  # another client
    limits.hit(limit, "192.0.2.1", NOW + timedelta(minutes=1))  # the next window


def test_sealed_values_open_only_for_their_purpose_and_owner() -> None:
    sealer = AesGcmSealer(KEYER)
    sealed = sealer.seal("15108695088", purpose="session", owner="a")
    assert "15108695088" not in sealed
    assert sealer.open(sealed, purpose="session", owner="a") == "15108695088"
    assert sealer.seal("15108695088", purpose="session", owner="a") != sealed  # a fresh nonce each time
    with pytest.raises(InvalidTag):
        sealer.open(sealed, purpose="session", owner="b")
    with pytest.raises(InvalidTag):
        sealer.open(sealed, purpose="totp", owner="a")
    with pytest.raises(InvalidTag):
        AesGcmSealer(Keyer(Pepper(b"q" * 32))).open(sealed, purpose="session", owner="a")


def test_a_try_is_given_back_when_what_follows_fails_and_the_error_stays_the_same() -> None:
    given_back: list[str] = []
    with pytest.raises(ValueError, match="weak"), try_given_back_on_failure(lambda: given_back.append("try")):
        raise ValueError("weak")
    assert given_back == ["try"]

    def cannot() -> None:
        raise ConnectionError("AWS is down")

    with pytest.raises(ValueError, match="weak") as raised, try_given_back_on_failure(cannot):
        raise ValueError("weak")  # the error raised is this one, not the give-back's
    assert raised.value.__notes__ == ["The try was not given back: ConnectionError"]
    with try_given_back_on_failure(cannot):  # nothing failed: nothing given back
        pass


def test_a_resend_knows_its_own_write_by_count_time_and_codes_and_no_other_s() -> None:
    """A resend whose write was refused reads again: its own write (made, its answer lost) is the count, the
    time and the codes it wrote, the time as stored (to the millisecond); another request's that drew the
    same code at the same count, a moment before or after, is not."""
    written_at = NOW + timedelta(microseconds=123_456)
    stored_at = datetime.fromisoformat(iso(written_at))  # as read back
    codes = {Channel.SMS: "hash-of-123456"}
    assert stored_at != written_at
    assert written_by_this_resend((2, stored_at, codes), (2, written_at, codes))
    for other_at in (written_at - timedelta(milliseconds=1), written_at + timedelta(milliseconds=1)):
        assert not written_by_this_resend((2, datetime.fromisoformat(iso(other_at)), codes), (2, written_at, codes))
    assert not written_by_this_resend((3, stored_at, codes), (2, written_at, codes))  # a resend after it
    assert not written_by_this_resend((2, stored_at, {Channel.SMS: "another"}), (2, written_at, codes))
    assert not written_by_this_resend((2, None, codes), (2, written_at, codes))  # stored without a time
    assert not written_by_this_resend((2, stored_at, {}), (2, written_at, {}))  # nothing drawn: nothing to send
    both = {**codes, Channel.EMAIL: "hash-of-654321"}
    assert not written_by_this_resend((2, stored_at, codes), (2, written_at, both))  # the e-mail's not written


def test_the_api_takes_codes_of_the_length_the_domain_makes() -> None:
    """A one-time code and a PIN code as made are what the API's models take (and no other length): a
    change of one length alone would refuse every code typed."""
    digits = TypeAdapter(SixDigits)
    for length in (codes.CODE_DIGITS, letters.CODE_DIGITS):
        assert digits.validate_python("7" * length) == "7" * length
        with pytest.raises(ValidationError):
            digits.validate_python("7" * (length + 1))
