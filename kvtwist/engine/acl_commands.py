"""What ACLs know of each command: its full name, categories, subcommands, keys and channels.

Everything is derived from Redis 7.0's table (commanddocs.json, see engine/introspect.py) for
the commands present in kvstore's command table, so a command registered later gets its
categories and key positions from that table by name; a command Redis does not have is
described from its table flags (introspect's fallback). The universe is rebuilt whenever
the table grows.

Key extraction follows Redis's getKeysFromCommandWithSpecs: the key specs, unless one has
``variable_flags`` or is incomplete, in which case the command's own getkeys procedure
(SET, BITFIELD, SORT, SORT_RO, MIGRATE) decides. Each key comes with the permission it
needs: READ when its spec says ``access``, WRITE when ``insert``, ``delete`` or ``update``.
"""

from __future__ import annotations

from kvtwist.engine.introspect import command_data, lookup, subcommand_names
from kvtwist.engine.table import SUBCOMMANDS, TABLE

READ, WRITE = 1, 2
ALL = READ | WRITE

# Redis 7.0's ACLCommandCategories, in its order (ACL CAT lists them so).
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting")

# Channel arguments (Redis's commands_with_channels), only the kinds ACLs check:
# command name -> (first position, count or -1 for all the rest, is_pattern).
CHANNELS = {b"subscribe": (1, -1, False), b"ssubscribe": (1, -1, False),
            b"psubscribe": (1, -1, True), b"publish": (1, 1, False),
            b"spublish": (1, 1, False)}


class CommandInfo:
    """One command or subcommand as ACLs see it."""

    __slots__ = ("name", "categories", "subs", "by_arg", "parent", "keys", "single",
                 "strictest", "channels")

    def __init__(self, name: str, entry: dict, parent) -> None:
        self.name = name  # full name: "get", "config|get"
        self.categories = frozenset(category.lstrip("@") for category in entry["acl"])
        self.subs = []  # CommandInfo of each subcommand, in order
        self.by_arg = {}  # lower-cased subcommand name (bytes) -> its CommandInfo
        self.parent = parent
        self.keys = _extractor(entry)  # argv -> [(position, READ|WRITE)], or None: no keys
        # (position, READ|WRITE) of a command's only key at a fixed place (GET, SET...).
        self.single = getattr(self.keys, "single", None)
        # Sufficient if not necessary: a single key needing at most this (SET, BITFIELD).
        self.strictest = self.single or getattr(self.keys, "strictest", None)
        self.channels = None


class Universe:
    """The commands present now: ``ordered`` (each top-level command followed by its
    subcommands), ``by_name`` and, per category, its member names."""

    def __init__(self) -> None:
        self.ordered = []
        self.top = []
        self.by_name = {}
        self.by_command = {}  # table name (bytes) -> CommandInfo
        self.version = _version()
        data = command_data()
        # Redis 7.0's commands first (in its table's order), then kvstore's own: rules
        # written for Redis (+eval, ~ on PFCOUNT's key...) apply whether or not kvstore
        # implements the command, which then answers "unknown command" by itself.
        names = [full.encode() for full in data if "|" not in full]
        names.extend(name for name in TABLE if name.decode("utf-8", "replace") not in data)
        for name in names:
            text = name.decode("utf-8", "replace")
            entry = lookup(name) or data[text]
            info = CommandInfo(text, entry, None)
            info.channels = CHANNELS.get(name)
            self.top.append(info)
            self.ordered.append(info)
            self.by_name[text] = info
            self.by_command[name] = info
            present = name in TABLE
            for full in (subcommand_names(text) if present else entry["subcommands"]):
                sub_entry = lookup(full.encode()) if present else data.get(full)
                if sub_entry is None:
                    continue
                sub = CommandInfo(full, sub_entry, info)
                info.subs.append(sub)
                info.by_arg[full.split("|", 1)[1].encode()] = sub
                self.ordered.append(sub)
                self.by_name[full] = sub
        self.members = {category: frozenset(info.name for info in self.ordered
                                            if category in info.categories)
                        for category in CATEGORIES}
        self.all_names = frozenset(self.by_name)

    def find(self, name: bytes):
        """Return the CommandInfo named ``name`` ("GET", "config|get"), or None (Redis's
        ACLLookupCommand: case-insensitive, at most one ``|``)."""
        try:
            return self.by_name.get(name.lower().decode("utf-8"))
        except UnicodeDecodeError:
            return None

    def resolve(self, command, argv):
        """Return the CommandInfo a call runs: the subcommand of a container (None when the
        subcommand is unknown: the command itself answers that error)."""
        info = self.by_command.get(command.name)
        if info is None or not info.subs or len(argv) < 2:
            return info
        return info.by_arg.get(argv[1].lower())


_UNIVERSE = []
# The current universe's CommandInfo by table name: the check's O(1) way in (acl_check).
CURRENT = {}


def _version() -> int:
    # Commands and containers register together at import time: O(1) to compare.
    return len(TABLE) * 1000 + len(SUBCOMMANDS)


def universe() -> Universe:
    """Return the command universe, rebuilt when commands were registered since."""
    if not _UNIVERSE or _UNIVERSE[0].version != _version():
        _UNIVERSE[:] = [Universe()]
        CURRENT.clear()
        CURRENT.update(_UNIVERSE[0].by_command)
    return _UNIVERSE[0]


def category_of(name: bytes):
    """Return Redis's name of a category (case-insensitive), or None if there is none."""
    lowered = name.lower().decode("utf-8", "replace")
    return lowered if lowered in CATEGORIES else None


# -- keys -------------------------------------------------------------------------------


def _permission(flags) -> int:
    need = 0
    if "access" in flags:
        need |= READ
    if "insert" in flags or "delete" in flags or "update" in flags:
        need |= WRITE
    return need


def _extractor(entry: dict):
    name = entry["name"]
    special = _PROCS.get(name)
    if special is not None:
        return special
    if entry.get("legacy_keys"):
        first, last, step = entry["first"], entry["last"], entry["step"] or 1

        def legacy(argv):
            end = last if last >= 0 else len(argv) + last
            return [(position, ALL) for position in range(first, min(end, len(argv) - 1) + 1,
                                                         step)]
        return legacy
    specs = [spec for spec in entry["key_specs"] if "not_key" not in spec["flags"]]
    if not specs:
        return None
    if len(specs) == 1 and _simple(specs[0]):
        # One key at a fixed position (GET, INCR, ...): the common case, kept cheap.
        position = specs[0]["begin_search"]["spec"]["index"]
        need = _permission(specs[0]["flags"])
        pair = [(position, need)]

        def single(argv):
            return pair if position < len(argv) else []
        single.single = (position, need)
        return single
    compiled = [(spec, _permission(spec["flags"])) for spec in specs]
    return lambda argv: _spec_keys(compiled, argv)


def _simple(spec) -> bool:
    return (spec["begin_search"]["type"] == "index" and spec["find_keys"]["type"] == "range"
            and spec["find_keys"]["spec"]["lastkey"] == 0)


def _spec_keys(compiled, argv) -> list:
    """Redis's getKeysUsingKeySpecs: O(arguments); [] when a spec does not fit argv."""
    found = []
    argc = len(argv)
    for spec, need in compiled:
        begin, find = spec["begin_search"], spec["find_keys"]
        if begin["type"] == "index":
            first = begin["spec"]["index"]
        elif begin["type"] == "keyword":
            keyword, start = begin["spec"]["keyword"].lower().encode(), begin["spec"]["startfrom"]
            first = 0
            positions = range(start, argc) if start > 0 else range(argc + start, 0, -1)
            for position in positions:
                if 1 <= position < argc and argv[position].lower() == keyword:
                    first = position + 1
                    break
            if not first:
                continue
        else:
            return []
        if find["type"] == "range":
            step, lastkey, limit = (find["spec"]["keystep"], find["spec"]["lastkey"],
                                    find["spec"]["limit"])
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif find["type"] == "keynum":
            step = find["spec"]["keystep"]
            index = first + find["spec"]["keynumidx"]
            if index >= argc:
                return []
            try:
                count = int(argv[index])
            except ValueError:
                return []
            if count < 0:
                return []
            first = index + find["spec"]["firstkey"] - find["spec"]["keynumidx"]
            last = first + count - 1
        else:
            return []
        if last >= argc or last < first or first >= argc:
            return []
        found.extend((position, need) for position in range(first, last + 1, step or 1))
    return found


def _set_keys(argv) -> list:
    # setGetKeys: RW with GET, else OW.
    for arg in argv[3:]:
        if arg.lower() == b"get":
            return [(1, ALL)]
    return [(1, WRITE)]


def _bitfield_keys(argv) -> list:
    # bitfieldGetKeys: read-only when only GET (and OVERFLOW) are used.
    index, argc = 2, len(argv)
    while index < argc:
        remaining = argc - index - 1
        arg = argv[index].lower()
        if arg == b"get" and remaining >= 2:
            index += 3
        elif arg == b"overflow" and remaining >= 1:
            index += 2
        else:
            return [(1, ALL)]
    return [(1, READ)]


def _sort_keys(argv) -> list:
    # sortGetKeys: the sorted key, and the last STORE's destination.
    keys = [(1, READ)]
    store = None
    index = 2
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    while index < len(argv):
        arg = argv[index].lower()
        if arg in skips:
            index += skips[arg]
        elif arg == b"store" and index + 1 < len(argv):
            store = (index + 1, WRITE)
        index += 1
    if store is not None:
        keys.append(store)
    return keys


def _migrate_keys(argv) -> list:
    # migrateGetKeys: the key at 3, or the ones after KEYS (none if argv[3] is not empty).
    argc = len(argv)
    index = 6
    skips = {b"auth": 1, b"auth2": 2}
    while argc > 6 and index < argc:
        arg = argv[index].lower()
        if arg == b"keys":
            if argv[3]:
                return []
            return [(position, ALL) for position in range(index + 1, argc)]
        index += skips.get(arg, 0) + 1
    return [(3, ALL)] if argc > 3 else []


# Procedures whose only key is always at 1: a key granted READ and WRITE passes them all.
_set_keys.strictest = _bitfield_keys.strictest = (1, ALL)

_PROCS = {"set": _set_keys, "bitfield": _bitfield_keys, "sort": _sort_keys,
          "sort_ro": lambda argv: [(1, READ)], "migrate": _migrate_keys}
