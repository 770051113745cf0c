"""What must never reach a log line, a metric or a trace, and the search for it in what the stack wrote.

The values are those the tests used: every identity number of the population register, and what the
tests sent and received (passwords, codes, tokens, TOTP secrets, phone numbers, e-mail addresses),
plus what the outbox delivered (PIN codes, one-time codes, recipients).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Request and response fields that hold a secret or personal data.
SECRET_FIELDS = frozenset(
    {
        "identity_number",
        "password",
        "current_password",
        "new_password",
        "code",
        "pin_code",
        "mobile_code",
        "email_code",
        "mobile",
        "email",
        "access_token",
        "secret",
        "otpauth_uri",
    }
)
_DIGITS = re.compile(r"\d+")
_SPACED = re.compile(r"(?<=\d) (?=\d)")  # a space between two digits
_CODE = re.compile(r"(?<![\d])(\d{6})(?![\d])")
_SHORT_NUMBER = re.compile(r"\d{1,7}")
MIN_TEXT_LENGTH = 8  # shorter free-text values (never used by the tests) would match by chance


@dataclass
class PersonalData:
    """Values to look for: digit strings are matched as whole numbers, the rest as substrings."""

    numbers: dict[str, str] = field(default_factory=dict)  # digits -> what it is
    texts: dict[str, str] = field(default_factory=dict)

    def add(self, value: Any, what: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                self.add(inner, f"{what}.{key}")
        elif isinstance(value, list):
            for inner in value:
                self.add(inner, what)
        elif isinstance(value, str) and value.strip():
            digits = re.sub(r"[\s+]", "", value)
            if digits.isdigit():
                self.numbers[digits] = what
                if len(digits) == 8:  # a Norwegian number without its prefix, and with it
                    self.numbers["47" + digits] = what
                if digits.startswith("47") and len(digits) == 10:
                    self.numbers[digits[2:]] = what
            elif len(value) >= MIN_TEXT_LENGTH:
                self.texts[value] = what

    def add_exchange(self, body: Any) -> None:
        """A request or response body: its secret fields, at any depth."""
        if isinstance(body, dict):
            for key, value in body.items():
                if key in SECRET_FIELDS or key == "pin_codes":
                    self.add(value, key)
                else:
                    self.add_exchange(value)
        elif isinstance(body, list):
            for item in body:
                self.add_exchange(item)

    def add_person(self, person: dict[str, Any]) -> None:
        """A person of the population register: the name, and each line of the addresses (but a line of a
        few digits alone, a postal code abroad, which any id's digits could hold by chance)."""
        self.add(person.get("name"), "name")
        for lines in (person.get("address"), person.get("letter_address")):
            self.add([line for line in lines or [] if not _SHORT_NUMBER.fullmatch(line.strip())], "address")

    def add_outbox(self, outbox: dict[str, Any]) -> None:
        for letter in outbox.get("letters", []):
            self.add(letter.get("identity_number"), "letter identity number")
            self.add(letter.get("pin_codes"), "PIN code")
        for sms in outbox.get("sms", []):
            self.add(sms.get("to"), "mobile")
            self.add(_CODE.findall(sms.get("message", "")), "one-time code")
        for mail in outbox.get("emails", []):
            self.add(mail.get("to"), "e-mail")
            self.add(_CODE.findall(mail.get("body", "")), "one-time code")

    def found_in(self, lines: Iterable[str]) -> Iterator[str]:
        """Each place a value appears: 'line N: <what it is>' (never the value itself)."""
        for number, line in enumerate(lines, 1):
            # as written, and with the spaces inside numbers taken out ("957 12 345", "151086 95088")
            for digits in dict.fromkeys([*_DIGITS.findall(line), *_DIGITS.findall(_SPACED.sub("", line))]):
                if digits in self.numbers:
                    yield f"line {number}: {self.numbers[digits]}"
            for text, what in self.texts.items():
                if text in line:
                    yield f"line {number}: {what}"
