"""The data: a dict of bytes with expiry driven by an injected clock, logging every effect."""

from __future__ import annotations

# Effect opcodes: what the keyspace logs for each mutation (see docs/design.md).
SET, DEL, EXPIRE_AT, PERSIST, FLUSH = 1, 2, 3, 4, 5
