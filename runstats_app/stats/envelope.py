"""What the shared cache stores: a one-line header, then the response body as sent.

    RS1 <generation> <compute_ms> <cached_at>\n<body JSON>

A hit serves the body bytes without parsing them; the generation lets a
writer refuse to replace a newer result (see WRITE_IF_NEWER in cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"RS1"


@dataclass(frozen=True)
class Envelope:
    generation: int
    compute_ms: int
    cached_at: str
    body: bytes

    def encode(self) -> bytes:
        header = b"%s %d %d %s\n" % (
            MAGIC,
            self.generation,
            self.compute_ms,
            self.cached_at.encode(),
        )
        return header + self.body


def decode(raw: bytes | None) -> Envelope | None:
    """The envelope, or None for anything undecodable (treated as a miss)."""
    if not raw:
        return None
    header, newline, body = raw.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 4 or parts[0] != MAGIC or not body.startswith(b"{"):
        return None
    try:
        return Envelope(int(parts[1]), int(parts[2]), parts[3].decode(), body)
    except (ValueError, UnicodeDecodeError):
        return None
