"""COMMAND: COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS, HELP, with Redis 7.0's data.

The data (arity, flags, key positions, ACL categories, tips, key specs, documentation) is
commanddocs.json, generated from Redis 7.0's src/commands/*.json by tools/gen_command_docs.py
for every Redis 7.0 command; only the commands in the table at call time are shown, so
commands other families add appear as they are registered. A command Redis does not have
(PUT, FLUSH, COMPACT...) is described from its table entry. Subcommands shown are those a
container registers in table.subcommands(name) when it does (CLIENT, OBJECT, COMMAND), else
Redis's own list. Redis answers sets as RESP3 sets; here they are arrays in both protocols.
"""

from __future__ import annotations

import json
import os

from kvtwist.engine.glob import compile_glob
from kvtwist.engine.table import SUBCOMMANDS, SYNTAX, TABLE, register, sub_dispatch, subcommands
from kvtwist.wire.replies import CommandError, Pairs, Status

_DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "commanddocs.json")
_DATA: dict = {}


def command_data() -> dict:
    """Return {full name (str, "client|list"): entry} for every Redis 7.0 command (loaded once)."""
    if not _DATA:
        with open(_DATA_FILE, encoding="utf-8") as handle:
            _DATA.update(json.load(handle))
    return _DATA


# Flags of a table entry Redis would show (kvtwist's own commands are described by them).
_REPLY_FLAGS = ("write", "readonly", "denyoom", "admin", "pubsub", "noscript", "blocking",
                "loading", "stale", "fast", "no_auth", "allow_busy")


def _fallback(command) -> dict:
    """Describe a table command Redis 7.0 does not have, as Redis would a command with these
    flags and key positions (implicit ACL categories included)."""
    flags = [flag for flag in _REPLY_FLAGS if flag in command.flags]
    acl = []
    for flag, category in (("write", "@write"), ("readonly", "@read"), ("admin", "@admin"),
                           ("pubsub", "@pubsub"), ("fast", "@fast"), ("blocking", "@blocking")):
        if flag in flags:
            acl.append(category)
    if "fast" not in flags:
        acl.append("@slow")
    if "admin" in flags:
        acl.append("@dangerous")
    doc = (command.handler.__doc__ or "").strip().split("\n")[0]
    docs = {"summary": doc} if doc else {}
    docs["group"] = "generic"
    return {"name": command.name.decode(), "arity": command.arity, "flags": flags,
            "first": command.first_key, "last": command.last_key, "step": command.step,
            "acl": acl, "tips": [], "key_specs": [], "docs": docs, "subcommands": [],
            "legacy_keys": command.first_key > 0}


def _sub_fallback(full: str, arity: int) -> dict:
    return {"name": full, "arity": arity, "flags": [], "first": 0, "last": 0, "step": 0,
            "acl": ["@slow"], "tips": [], "key_specs": [], "docs": {"group": "generic"},
            "subcommands": []}


def subcommand_names(container: str) -> list:
    """Return the full names ("client|list") of a present container's subcommands."""
    entry = command_data().get(container)
    known = entry["subcommands"] if entry else []
    registry = SUBCOMMANDS.get(container.encode())
    if registry is None:
        return list(known)
    names = [full for full in known if full.split("|", 1)[1].encode() in registry]
    extra = sorted(container + "|" + sub.decode("utf-8", "replace") for sub in registry
                   if (container + "|" + sub.decode("utf-8", "replace")) not in known)
    return names + extra


def lookup(name: bytes):
    """Return the entry of a present command or subcommand ("GET", "client|list"), or None."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    command = TABLE.get(parts[0])
    if command is None:
        return None
    base = parts[0].decode("utf-8", "replace")
    if len(parts) == 1:
        return command_data().get(base) or _fallback(command)
    full = base + "|" + parts[1].decode("utf-8", "replace")
    if full not in subcommand_names(base):
        return None
    entry = command_data().get(full)
    if entry is None:
        registered = SUBCOMMANDS.get(parts[0], {}).get(parts[1])
        entry = _sub_fallback(full, registered[0] if registered else -2)
    return entry


def _convert(value, key: str = ""):
    if isinstance(value, dict):
        return Pairs([(name.encode(), _convert(item, name)) for name, item in value.items()])
    if isinstance(value, list):
        if key in ("flags", "doc_flags"):
            return [Status(flag.encode()) for flag in value]
        return [_convert(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def info_reply(entry) -> list:
    """Return COMMAND INFO's 10-element array for one entry (subcommands included)."""
    subs = [info_reply(lookup(full.encode())) for full in subcommand_names(entry["name"])] \
        if "|" not in entry["name"] else []
    return [entry["name"].encode(), entry["arity"],
            [Status(flag.encode()) for flag in entry["flags"]],
            entry["first"], entry["last"], entry["step"],
            [Status(category.encode()) for category in entry["acl"]],
            [tip.encode() for tip in entry["tips"]],
            [_convert(spec) for spec in entry["key_specs"]], subs]


def docs_reply(entry) -> Pairs:
    """Return COMMAND DOCS's map for one entry (subcommands included)."""
    docs = _convert(entry["docs"])
    if "|" not in entry["name"]:
        subs = subcommand_names(entry["name"])
        if subs:
            docs.items.append((b"subcommands", Pairs(
                [(full.encode(), docs_reply(lookup(full.encode()))) for full in subs])))
    return docs


def _info(session, argv):
    if len(argv) == 2:
        return [info_reply(lookup(name)) for name in TABLE]
    found = [lookup(name) for name in argv[2:]]
    return [None if entry is None else info_reply(entry) for entry in found]


def _docs(session, argv):
    names = list(TABLE) if len(argv) == 2 else argv[2:]
    pairs = []
    for name in names:
        entry = lookup(name)
        if entry is not None:
            pairs.append((entry["name"].encode(), docs_reply(entry)))
    return Pairs(pairs)


def _all_names() -> list:
    names = []
    for name in TABLE:
        names.append(name.decode("utf-8", "replace"))
        names.extend(subcommand_names(names[-1]))
    return names


def _list(session, argv):
    """COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]: O(commands)."""
    kind = value = None
    index = 2
    while index < len(argv):
        if argv[index].lower() != b"filterby" or len(argv) - 1 - index != 2:
            raise CommandError(SYNTAX)
        kind, value = argv[index + 1].lower(), argv[index + 2]
        if kind not in (b"module", b"aclcat", b"pattern"):
            raise CommandError(SYNTAX)
        index += 3
    names = _all_names()
    if kind == b"module":
        names = []  # no modules are ever loaded
    elif kind == b"aclcat":
        category = "@" + value.decode("utf-8", "replace").lower()
        names = [name for name in names if category in lookup(name.encode())["acl"]]
    elif kind == b"pattern":
        matches = compile_glob(value, nocase=True).matches
        names = [name for name in names if matches(name.encode())]
    return [name.encode() for name in names]


# -- COMMAND GETKEYS ------------------------------------------------------------------


def _spec_keys(entry, argv):
    """Redis's getKeysUsingKeySpecs: [(position, flags)], or None when a spec does not fit."""
    found = []
    argc = len(argv)
    for spec in entry["key_specs"]:
        if "not_key" in spec["flags"]:
            continue
        begin, find = spec["begin_search"], spec["find_keys"]
        if begin["type"] == "index":
            first = begin["spec"]["index"]
        elif begin["type"] == "keyword":
            keyword, start = begin["spec"]["keyword"].lower(), begin["spec"]["startfrom"]
            first = 0
            positions = range(start, argc) if start > 0 else range(argc + start, 0, -1)
            for position in positions:
                if 1 <= position < argc and argv[position].lower() == keyword.encode():
                    first = position + 1
                    break
            if not first:
                continue
        else:
            return None
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
            if find["spec"]["keynumidx"] >= argc or first + find["spec"]["keynumidx"] >= argc:
                return None
            raw = argv[first + find["spec"]["keynumidx"]]
            try:
                count = int(raw)
            except ValueError:
                return None
            if b"%d" % count != raw or count < 0:
                return None
            first += find["spec"]["firstkey"]
            last = first + count - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        found.extend((position, spec["flags"]) for position in range(first, last + 1, step))
        if "incomplete" in spec["flags"]:
            return None
    return found


def _set_keys(argv):
    # Redis's setGetKeys: SET's key is RW (GET) or OW, its flags depending on GET.
    for arg in argv[3:]:
        if arg.lower() == b"get":
            return [(1, ["RW", "access", "update"])]
    return [(1, ["OW", "update"])]


def _sort_keys(argv):
    # Redis's sortGetKeys / sortROGetKeys: the key, and SORT's last STORE destination.
    found = [(1, ["RO", "access"])]
    if argv[0].lower() == b"sort_ro":
        return found
    store = None
    index = 2
    while index < len(argv):
        option = argv[index].split(b"\0", 1)[0].lower()
        if option == b"limit":
            index += 2
        elif option == b"store" and index + 1 < len(argv):
            store = index + 1
        elif option in (b"get", b"by"):
            index += 1
        index += 1
    return found + ([(store, ["OW", "update"])] if store is not None else [])


def _getkeys(session, argv, with_flags: bool):
    target = argv[2:]
    entry = lookup(target[0]) if b"|" not in target[0] else None
    if entry is not None and len(target) > 1 and subcommand_names(entry["name"]):
        entry = lookup(target[0] + b"|" + target[1])
    if entry is None:
        raise CommandError("ERR Invalid command specified")
    if entry.get("legacy_keys"):
        positions = [(entry["first"], ["RW", "access", "update"])]
        has_keys = True
    else:
        positions = None
        has_keys = any("not_key" not in spec["flags"] for spec in entry["key_specs"])
    if not has_keys:
        raise CommandError("ERR The command has no key arguments")
    arity = entry["arity"]
    if (arity > 0 and arity != len(target)) or len(target) < -arity:
        raise CommandError("ERR Invalid number of arguments specified for command")
    if entry.get("legacy_keys"):
        last = entry["last"] if entry["last"] >= 0 else len(target) + entry["last"]
        positions = [(index, ["RW", "access", "update"])
                     for index in range(entry["first"], last + 1, entry["step"] or 1)]
    elif entry["name"] == "set":
        positions = _set_keys(target)
    elif entry["name"] in ("sort", "sort_ro"):
        positions = _sort_keys(target)
    else:
        positions = _spec_keys(entry, target)
    if positions is None:
        if "no_mandatory_keys" in entry["flags"]:
            return []
        raise CommandError("ERR Invalid arguments specified for command")
    if not with_flags:
        return [target[position] for position, _ in positions]
    return [[target[position], [Status(flag.encode()) for flag in flags]]
            for position, flags in positions]


_HELP = [
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]

COMMAND_SUBCOMMANDS = subcommands("command")
COMMAND_SUBCOMMANDS.update({
    b"count": (2, lambda session, argv: len(TABLE)),
    b"info": (-2, _info),
    b"docs": (-2, _docs),
    b"list": (-2, _list),
    b"getkeys": (-4, lambda session, argv: _getkeys(session, argv, False)),
    b"getkeysandflags": (-4, lambda session, argv: _getkeys(session, argv, True)),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in [
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"] + _HELP]),
})


@register("command", -1, "loading stale", 0, 0, 0)
def cmd_command(session, argv):
    """COMMAND [COUNT|INFO|DOCS|LIST|GETKEYS|GETKEYSANDFLAGS|HELP]: O(commands) for the
    listings, O(arguments) for GETKEYS."""
    if len(argv) == 1:
        return [info_reply(lookup(name)) for name in TABLE]
    return sub_dispatch(COMMAND_SUBCOMMANDS, argv, session)
