"""Reading helpers shared by the record format and reader tests: every effect a RecordReader
yields from what it was fed, by each of its three paths."""

from __future__ import annotations

from kvtwist.engine.keyspace import SET
from kvtwist.storage.reader import NEED_MORE, RecordReader


def read_all(reader: RecordReader) -> list:
    """The careful path: next_record until NEED_MORE."""
    out = []
    while True:
        effect = reader.next_record()
        if effect is NEED_MORE:
            return out
        out.append(effect)


def apply_all(reader: RecordReader) -> list:
    """The bulk path, every effect (SETs included) applied one by one."""
    out = []
    reader.apply_all(out.append)
    return out


def apply_batched(reader: RecordReader) -> list:
    """The loading path: SET records arrive in batches of parallel lists, the rest one by one."""
    out = []

    def load_items(keys, values, ats) -> None:
        out.extend((SET, key, value, at) for key, value, at in zip(keys, values, ats))

    reader.apply_all(out.append, load_items)
    return out
