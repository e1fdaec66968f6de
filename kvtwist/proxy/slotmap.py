"""Redis Cluster's key slots and slot map, as a cluster client sees them.

``key_slot`` is Redis's ``keyHashSlot``: CRC16 (XMODEM) of the key, or of its hash tag
(what lies between the first ``{`` and the next ``}``, when that is not empty), modulo
16384. ``SlotMap`` says which primary ("host:port") serves each slot; it is read from
``CLUSTER SLOTS`` (``parse_slots``) or, where that is missing, ``CLUSTER SHARDS``
(``parse_shards``) (``ask_map`` asks for either), and compared with the next one
(``changed``) so the cache can drop the keys of slots whose owner changed.
``redirection`` reads a ``MOVED`` / ``ASK`` error.
"""

from __future__ import annotations

from binascii import crc_hqx

from kvtwist.wire.replies import Error

SLOTS = 16384
SLOTS_ARGV = [b"CLUSTER", b"SLOTS"]
SHARDS_ARGV = [b"CLUSTER", b"SHARDS"]


def key_slot(key: bytes) -> int:
    """The cluster slot of ``key``; O(len(key))."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & 16383


class SlotMapError(ValueError):
    """A CLUSTER SLOTS / SHARDS reply kvproxy cannot read."""


def _text(value) -> str:
    if value.__class__ is bytes:
        return value.decode("utf-8", "replace")
    return str(value)


def _address(host, port, default_host: str) -> str:
    host = _text(host)
    if host in ("", "?"):  # the node does not know its own address: the one we asked
        host = default_host
    if ":" in host and not host.startswith("["):
        host = "[%s]" % (host,)
    return "%s:%d" % (host, int(port))


def parse_slots(reply, default_host: str = "127.0.0.1") -> list:
    """The (first slot, last slot, primary address) ranges of a ``CLUSTER SLOTS`` reply;
    O(ranges)."""
    if reply.__class__ is not list:
        raise SlotMapError("CLUSTER SLOTS answered %r" % (reply,))
    ranges = []
    for entry in reply:
        try:
            first, last, primary = int(entry[0]), int(entry[1]), entry[2]
            ranges.append((first, last, _address(primary[0], primary[1], default_host)))
        except (TypeError, ValueError, IndexError) as exc:
            raise SlotMapError("bad CLUSTER SLOTS entry %r: %s" % (entry, exc)) from None
    return ranges


def _fields(pairs) -> dict:
    """A flat [name, value, ...] list (RESP2's map) as a dict with str names."""
    if isinstance(pairs, dict):
        return dict((_text(name), value) for name, value in pairs.items())
    return dict((_text(pairs[index]), pairs[index + 1]) for index in range(0, len(pairs) - 1, 2))


def parse_shards(reply, default_host: str = "127.0.0.1") -> list:
    """The (first slot, last slot, primary address) ranges of a ``CLUSTER SHARDS`` reply
    (Redis 7): each shard's slot pairs and its ``master`` node; O(shards x nodes)."""
    if reply.__class__ is not list:
        raise SlotMapError("CLUSTER SHARDS answered %r" % (reply,))
    ranges = []
    for shard in reply:
        try:
            fields = _fields(shard)
            slots = [int(value) for value in fields["slots"]]
            primary = None
            for node in fields["nodes"]:
                node = _fields(node)
                if _text(node.get("role", b"")) == "master":
                    primary = node
                    break
            if primary is None or not slots:
                continue
            host = primary.get("endpoint") or primary.get("ip") or b""
            port = primary.get("port") or primary.get("tls-port")
            address = _address(host, port, default_host)
            for index in range(0, len(slots) - 1, 2):
                ranges.append((slots[index], slots[index + 1], address))
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise SlotMapError("bad CLUSTER SHARDS entry %r: %s" % (shard, exc)) from None
    return ranges


class SlotMap:
    """The primary serving each of the 16384 slots (None: no one), and the set of them."""

    __slots__ = ("owners",)

    def __init__(self, ranges=()) -> None:
        owners = [None] * SLOTS
        for first, last, address in ranges:
            if not 0 <= first <= last < SLOTS:
                raise SlotMapError("slot range %d-%d out of 0-16383" % (first, last))
            owners[first:last + 1] = [address] * (last - first + 1)
        self.owners = owners

    def owner(self, slot: int):
        """The address of ``slot``'s primary, or None (O(1))."""
        return self.owners[slot]

    def assign(self, slot: int, address: str) -> None:
        """Say ``address`` serves ``slot`` now (a MOVED reply said so); O(1)."""
        self.owners[slot] = address

    def primaries(self) -> list:
        """The addresses serving at least one slot, sorted; O(slots)."""
        return sorted(set(owner for owner in self.owners if owner is not None))

    def covered(self) -> int:
        """How many slots have a primary; O(slots)."""
        return SLOTS - self.owners.count(None)

    def changed(self, other) -> set:
        """The slots whose owner differs in ``other`` (another SlotMap); O(slots)."""
        return set(slot for slot, (mine, theirs) in enumerate(zip(self.owners, other.owners))
                   if mine != theirs)

    def ranges(self) -> list:
        """(first, last, address) for each run of slots with one owner (None included);
        O(slots)."""
        runs = []
        owners = self.owners
        start = 0
        for slot in range(1, SLOTS + 1):
            if slot == SLOTS or owners[slot] != owners[start]:
                runs.append((start, slot - 1, owners[start]))
                start = slot
        return runs


def redirection(message: str):
    """(kind, slot, address) of a ``MOVED`` / ``ASK`` error's text, else None (O(1))."""
    parts = message.split(" ")
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    try:
        slot = int(parts[1])
    except ValueError:
        return None
    host, _, port = parts[2].rpartition(":")
    if not 0 <= slot < 16384 or not port.isdigit():
        return None
    return parts[0], slot, _address(host.strip("[]"), port, "")


def ask_map(request, host: str):
    """Ask ``CLUSTER SLOTS`` with ``request(argv)`` (``CLUSTER SHARDS`` if that is
    refused); the Deferred delivers the map's ranges, or fails with SlotMapError. ``host``
    stands for a node that does not know its own address."""
    def slots(reply):
        if reply.__class__ is Error:
            return request(SHARDS_ARGV).addCallback(shards)
        return parse_slots(reply, host)

    def shards(reply):
        if reply.__class__ is Error:
            raise SlotMapError("CLUSTER SLOTS and SHARDS refused: %s" % (reply.message,))
        return parse_shards(reply, host)
    return request(SLOTS_ARGV).addCallback(slots)
