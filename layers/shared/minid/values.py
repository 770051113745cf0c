"""The records of the domain (and of the adapters and the wiring): immutable values, as msgspec Structs.

Not dataclasses, for the cold start: a frozen dataclass writes and compiles its methods as its class is
made (0.6 to 1 ms each here), and a function's cold start made 25 to 60 of them, a tenth of it
(`make bench`); a Struct's class is made in C, in some 20 µs. They behave alike where the code relies
on it: fields in order with defaults, positional or keyword construction, equality, hashing (frozen),
`replace` (msgspec.structs.replace), `__post_init__`, pattern matching.

A field named in `__hidden__` is left out of repr (and str): secrets, sealed values and personal data
never reach a log line by way of a record's repr.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec


class Value(msgspec.Struct, frozen=True):
    __hidden__: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        shown = (f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name not in self.__hidden__)
        return f"{type(self).__name__}({', '.join(shown)})"
