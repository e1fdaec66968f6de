"""Checking, repairing and exporting a data directory: ``kvtwist check`` and ``kvtwist export``."""

from __future__ import annotations

import base64
import json
import os
import time

from kvtwist.storage.datadir import DataError, load, lock_directory, snapshot_path, truncate_file
from kvtwist.engine.databases import DBMAP, IN_DB, SELECT, SWAPDB
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, MUTATE, PERSIST, SET, SETRANGE
from kvtwist.engine.strbuf import StringBuffer, write_range
from kvtwist.engine.types import OPS, TYPES


class MemoryState:
    """A plain keyspace of every database for the tools.

    ``dbs`` maps a database's label to its dict key -> (value, expire_at_ms); ``index_of``
    maps labels to the index (SELECT number) they have after SWAPDBs (see engine/databases).
    """

    def __init__(self) -> None:
        self.dbs = {0: {}}
        self.index_of = {}
        self._loading = 0

    def database(self, label: int) -> dict:
        """Return the dict of dataset ``label``, made on first use."""
        data = self.dbs.get(label)
        if data is None:
            data = self.dbs[label] = {}
        return data

    @property
    def data(self) -> dict:
        """Return the dict of dataset 0 (the only one of a single-database directory)."""
        return self.dbs[0]

    def by_index(self) -> list:
        """Return ``[(index, dict)]`` for every database holding keys, in index order."""
        return sorted((self.index_of.get(label, label), data)
                      for label, data in self.dbs.items() if data)

    def __len__(self) -> int:
        return sum(len(data) for data in self.dbs.values())

    def apply(self, effect: tuple) -> None:
        """Apply one effect tuple."""
        op = effect[0]
        if op == IN_DB:
            self._apply(self.database(effect[1]), effect[2])
        elif op == SELECT:
            self._loading = effect[1]
        elif op == DBMAP:
            self.index_of = {label: index for index, label in enumerate(effect[1])}
        elif op == SWAPDB:
            _, a, b, label_a, label_b = effect
            labels = {index: label for label, index in self.index_of.items()}
            if labels.get(a, a) == label_a and labels.get(b, b) == label_b:
                self.index_of[label_a], self.index_of[label_b] = b, a
        else:
            self._apply(self.database(self._loading), effect)

    @staticmethod
    def _apply(data: dict, effect: tuple) -> None:
        op = effect[0]
        if op == SET:
            data[effect[1]] = (effect[2], effect[3])
        elif op == DEL:
            data.pop(effect[1], None)
        elif op == EXPIRE_AT:
            if effect[1] in data:
                data[effect[1]] = (data[effect[1]][0], effect[2])
        elif op == PERSIST:
            if effect[1] in data:
                data[effect[1]] = (data[effect[1]][0], 0)
        elif op == FLUSH:
            data.clear()
        elif op == SETRANGE:
            old = data.get(effect[1])
            value = write_range(old[0] if old else None, effect[2], effect[3])[0]
            data[effect[1]] = (value, old[1] if old else 0)
        elif op == MUTATE:
            _, key, code, opcode, args = effect
            old = data.get(key)
            value = old[0] if old else TYPES[code]()
            OPS[(code, opcode)](value, args)
            if value:
                data[key] = (value, old[1] if old else 0)
            else:
                data.pop(key, None)

    def load_items(self, keys: list, values: list, expire_ats: list) -> None:
        """Apply a batch of SET effects given as parallel lists, in order."""
        self.database(self._loading).update(zip(keys, zip(values, expire_ats)))


class Report:
    """The outcome of ``check``: ``ok``, human-readable ``lines``, and the process ``exit_code``."""

    def __init__(self, ok: bool, lines: list) -> None:
        self.ok = ok
        self.lines = lines
        self.exit_code = 0 if ok else 1


def check(directory: str, repair: bool = False) -> Report:
    """Check a data directory (``repair`` cuts it to the longest valid prefix); return a Report."""
    if not os.path.isdir(directory):
        return Report(False, ["%s: not a directory" % (directory,)])
    if not repair:
        return _check(directory, repair)
    try:  # a running kvstore must not have its files cut under it
        lock = lock_directory(directory)
    except DataError as exc:
        return Report(False, ["REFUSED: %s" % (exc,)])
    try:
        return _check(directory, repair)
    finally:
        os.close(lock)


def _check(directory: str, repair: bool) -> Report:
    state = MemoryState()
    try:
        result = load(directory, state.apply, repair=repair, load_items=state.load_items)
    except DataError as exc:
        return Report(False, ["CORRUPT: %s" % (exc,)])
    except OSError as exc:
        return Report(False, ["ERROR: %s" % (exc,)])
    lines = []
    if result.snapshot_bytes:
        snapshot = snapshot_path(directory, result.snapshot_generation)
        lines.append("snapshot %s: %d bytes" % (snapshot, result.snapshot_bytes))
    lines.append("journals up to generation %d: %d bytes" % (result.journal_generation,
                                                                result.journal_bytes))
    for path, offset, dropped in result.torn:
        if repair:
            truncate_file(path, offset)
        lines.append("%s torn tail at offset %d: %d bytes %s" % (
            path, offset, dropped, "cut off" if repair else "will be cut off at start"))
    for path, offset, dropped, reason in result.repaired:
        lines.append("REPAIRED %s: %s at offset %d; %d bytes dropped"
                     % (path, reason, offset, dropped))
    lines.append("%d records, %d keys: %s" % (result.records, len(state),
                                              "repaired" if result.repaired else "OK"))
    return Report(True, lines)


def export(directory: str, fmt: str, out, now_ms=None) -> int:
    """Write every live pair to binary file ``out`` as ``json`` lines or ``resp``; return the count.

    Raises DataError if the directory is unreadable or corrupt, ValueError for an unknown format.
    """
    if fmt not in ("json", "resp"):
        raise ValueError("unknown export format %r (use json or resp)" % (fmt,))
    state = MemoryState()
    try:
        load(directory, state.apply, repair=False, load_items=state.load_items)
    except OSError as exc:
        raise DataError("cannot read %s: %s" % (directory, exc.strerror or exc)) from None
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    count = 0
    write = out.write
    for index, data in state.by_index():
        if fmt == "resp" and (index or count):
            write(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(b"%d" % index), index))
        for key, (value, expire) in data.items():
            if expire and expire <= now_ms:
                continue
            count += 1
            if value.__class__ is StringBuffer:  # a string APPENDed to in place (write_range)
                value = bytes(value)
            typed = value.__class__ is not bytes
            if fmt == "json":
                item = {}
                if index:
                    item["db"] = index
                _json_field(item, "key", key)
                if typed:
                    item["type"] = value.type_name.decode()
                    _json_items(item, value.flatten(value.frozen()))
                else:
                    _json_field(item, "value", value)
                if expire:
                    item["expire_at_ms"] = expire
                write(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n")
            else:
                if typed:
                    commands = value.export_commands(key)
                    if expire:
                        commands.append([b"PEXPIREAT", key, b"%d" % expire])
                else:
                    commands = [[b"SET", key, value]
                                + ([b"PXAT", b"%d" % expire] if expire else [])]
                for args in commands:
                    write(b"*%d\r\n" % len(args)
                          + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return count


def _json_items(item: dict, items: list) -> None:
    # A typed value's flat items (types.TypedValue.flatten): text, or all as base64.
    try:
        item["items"] = [each.decode("utf-8") for each in items]
    except UnicodeDecodeError:
        item["items_base64"] = [base64.b64encode(each).decode("ascii") for each in items]


def _json_field(item: dict, name: str, value: bytes) -> None:
    # Text stays readable; bytes that are not UTF-8 go as base64 under a distinct name.
    try:
        item[name] = value.decode("utf-8")
    except UnicodeDecodeError:
        item[name + "_base64"] = base64.b64encode(value).decode("ascii")
