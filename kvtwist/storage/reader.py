"""Push-style reading of journal and snapshot files (storage/records.py's format): the longest
valid prefix, a torn tail told apart from corruption, and the bulk path that loads a file."""

from __future__ import annotations

import struct
import zlib

from kvtwist.engine.databases import DBMAP, SELECT
from kvtwist.engine.keyspace import SET
from kvtwist.storage.records import (
    END, HEADER_SIZE, MAGIC, NOOP, RECORD_HEAD, SNAPSHOT, CorruptRecord, decode_header,
    decode_payload,
)
from kvtwist.storage.typedrecords import SKIP

# A record longer than this is treated as corrupt rather than as a torn tail: a flipped
# length bit must not silently swallow the rest of a file.
MAX_PAYLOAD = 512 * 1024 * 1024 + 64

_SET_RECORD = struct.Struct(">IIBIIQ")  # record head and SET fields in one unpack
_crc32 = zlib.crc32
# Records whose place in a file _check verifies (in a journal: never).
_STRUCTURAL = frozenset([END, SELECT, DBMAP, SKIP])


class NeedMore:
    """The sentinel type of NEED_MORE."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = NeedMore()


class RecordReader:
    """Push-style reader: ``feed`` bytes, then ``next_record`` until NEED_MORE.

    ``offset`` is the file offset just past the last complete record (the longest valid
    prefix); ``finish()`` at end of file says how many bytes form a torn tail. Buffering is
    linear: consumed bytes are dropped in bulk, never rescanned. The reader also checks the
    file's structure: a journal holds no END record; a snapshot holds SET records and then
    one END record counting them (``end_count``), with nothing after it.
    """

    def __init__(self, path: str = "<stream>") -> None:
        self.path = path
        self.header = None
        self.offset = 0
        self.records = 0
        self.end_count = None
        self._buf = bytearray()
        self._pos = 0
        self._zero_tail = False

    def feed(self, data: bytes) -> None:
        """Buffer more bytes of the file."""
        if self._zero_tail and data.count(0) != len(data):
            # Bytes after a zero-filled run: it was not a tail, so it is corruption.
            self._zero_tail = False
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Return the number of bytes fed but not yet consumed as records."""
        return len(self._buf) - self._pos

    def _check(self, effect: tuple) -> None:
        # Structural rules that a checksum cannot see.
        if self.end_count is not None:
            raise CorruptRecord(self.path, self.offset, "data after the END record")
        op = effect[0]
        if self.header.kind == SNAPSHOT:
            if op == END:
                if effect[1] != self.records:
                    raise CorruptRecord(self.path, self.offset, "END record counts %d records, "
                                        "found %d" % (effect[1], self.records))
            elif op != SET and op != SELECT and op != DBMAP and op != SKIP:
                raise CorruptRecord(self.path, self.offset, "non-SET record in a snapshot")
        elif op == SELECT or op == DBMAP or op == SKIP:
            raise CorruptRecord(self.path, self.offset, "snapshot-only record in a journal")
        elif op == END:
            raise CorruptRecord(self.path, self.offset, "END record in a journal")

    def _read_header(self) -> bool:
        # Consumes the file header once it is complete; returns whether it was.
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < HEADER_SIZE:
            if available >= 4 and bytes(buf[pos : pos + 4]) != MAGIC:
                raise CorruptRecord(self.path, 0, "not a kvtwist file (bad magic)")
            return False
        view = memoryview(buf)
        try:
            self.header = decode_header(view[pos : pos + HEADER_SIZE], self.path)
        finally:
            view.release()
        self._pos = pos + HEADER_SIZE
        self.offset = HEADER_SIZE
        return True

    def next_record(self):
        """Return the next effect tuple (or ``(END, count)``), or NEED_MORE; raise CorruptRecord."""
        if self.header is None and not self._read_header():
            return NEED_MORE
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if self._zero_tail or available < 8:
            return NEED_MORE
        length, crc = RECORD_HEAD.unpack_from(buf, pos)
        if length == 0 or length > MAX_PAYLOAD:
            if buf.count(0, pos) == available:
                # A zero-filled end (blocks allocated, never written) reads as a torn tail
                # as long as nothing but zeros follows.
                self._zero_tail = True
                return NEED_MORE
            raise CorruptRecord(self.path, self.offset, "bad record length %d" % (length,))
        end = pos + 8 + length
        if end > len(buf):
            return NEED_MORE
        payload = bytes(buf[pos + 8 : end])
        if _crc32(payload) != crc:
            raise CorruptRecord(self.path, self.offset, "record checksum mismatch")
        try:
            effect = decode_payload(payload)
        except ValueError as exc:
            raise CorruptRecord(self.path, self.offset, str(exc)) from None
        self._check(effect)
        if effect[0] == END:
            self.end_count = effect[1]
        self._pos = end
        self.offset += 8 + length
        self.records += 1
        return effect

    def apply_all(self, apply, load_items=None) -> int:
        """Apply every complete buffered record except END; return how many were applied.

        SET records go in ordered batches to ``load_items(keys, values, expire_ats)`` (three
        parallel lists), other effects to ``apply(effect)``, each after the batch before it.
        Without ``load_items`` every effect goes to ``apply``. The bulk path for loading: one
        copy of the buffer, then a tight loop. Stops at NEED_MORE; raises CorruptRecord like
        ``next_record`` (records before it were applied).
        """
        count = 0
        if (self.header is None and not self._read_header()) or self._zero_tail:
            return 0
        view = memoryview(self._buf)
        try:
            data = bytes(view[self._pos :])
        finally:
            view.release()
        mv = memoryview(data)
        n = len(data)
        i = 0
        applied = 0
        keys, values, ats = [], [], []
        add_key, add_value, add_at = keys.append, values.append, ats.append
        set_record = _SET_RECORD.unpack_from
        head = RECORD_HEAD.unpack_from
        crc32 = _crc32
        snapshot = self.header.kind == SNAPSHOT
        ended = self.end_count is not None
        try:
            while i + 8 <= n:
                if i + 25 <= n and not ended:
                    # The common record, checked and sliced without building a tuple.
                    length, crc, op, klen, vlen, expire = set_record(data, i)
                    end = i + 8 + length
                    # A bytes slice checksums faster than a memoryview slice is made.
                    if (op == SET and 17 + klen + vlen == length and end <= n
                            and length <= MAX_PAYLOAD and crc32(data[i + 8 : end]) == crc):
                        k = i + 25
                        add_key(data[k : k + klen])
                        add_value(data[k + klen : end])
                        add_at(expire)
                        applied += 1
                        i = end
                        continue
                length, crc = head(data, i)
                p = i + 8
                end = p + length
                if end > n or length == 0 or length > MAX_PAYLOAD or crc32(mv[p:end]) != crc:
                    break
                try:
                    effect = decode_payload(data[p:end])
                except ValueError:
                    break
                if ended or snapshot or effect[0] in _STRUCTURAL:
                    self._check_at(effect, i, applied)
                    if effect[0] == END:
                        self.end_count = effect[1]
                        ended = True
                        applied += 1
                        i = end
                        continue
                if effect[0] == NOOP:
                    applied += 1
                    i = end
                    continue
                if keys:
                    count += self._flush(keys, values, ats, apply, load_items)
                apply(effect)
                applied += 1
                count += 1
                i = end
        finally:
            mv.release()
            if keys:
                count += self._flush(keys, values, ats, apply, load_items)
            self._pos += i
            self.offset += i
            self.records += applied
        # The odd case (torn, corrupt, zero-filled, data after END): the careful path raises
        # or waits.
        effect = self.next_record()
        if effect is not NEED_MORE:
            if effect[0] != END and effect[0] != NOOP:
                apply(effect)
                count += 1
            return count + self.apply_all(apply, load_items)
        return count

    @staticmethod
    def _flush(keys: list, values: list, ats: list, apply, load_items) -> int:
        # Hands over a batch of SET records and empties the lists in place; returns its size.
        count = len(keys)
        if load_items is not None:
            load_items(keys, values, ats)
        else:
            for key, value, at in zip(keys, values, ats):
                apply((SET, key, value, at))
        del keys[:], values[:], ats[:]
        return count

    def _check_at(self, effect: tuple, i: int, applied: int) -> None:
        # _check for a record inside apply_all's batch, where counters lag by (i, applied).
        self.offset += i
        self.records += applied
        try:
            self._check(effect)
        finally:
            self.offset -= i
            self.records -= applied

    def finish(self) -> int:
        """At end of file: return how many trailing bytes form a torn (incomplete) tail."""
        return len(self._buf) - self._pos
