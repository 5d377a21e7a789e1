"""Run ids: lowercase, roughly time-sortable, unguessable (ULID layout)."""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_run_id(now_ms: int | None = None) -> str:
    """48 bits of milliseconds then 80 random bits, 26 base32 characters.

    The alphabet is in ASCII order, so byte order follows creation time.
    """
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return _encode(millis, 10) + _encode(secrets.randbits(80), 16)
