"""Generate kvtwist/engine/commanddocs.json from Redis 7.0's src/commands/*.json.

Usage (from the repository root)::

    python tools/gen_command_docs.py --git /path/to/redis/.git --ref 7.0.15
    python tools/gen_command_docs.py --src /path/to/redis/src/commands

Every Redis 7.0 command (sentinel-only ones left out) is written, with its COMMAND INFO
fields and its COMMAND DOCS map computed as redis-server 7.0 computes them (implicit ACL
categories, the legacy first/last/step range, the movablekeys flag); kvtwist.engine.introspect
shows only the commands registered in the table at call time. One command per line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

# addReplyFlagsForCommand's order; hidden flags (may_replicate, sentinel...) are left out.
COMMAND_FLAGS = ["write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
                 "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast",
                 "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
                 "allow_busy"]
KEY_FLAGS = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
             "incomplete", "variable_flags"]
DOC_FLAGS = ["deprecated", "syscmd"]
ACL_CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
                  "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
                  "blocking", "dangerous", "connection", "transaction", "scripting"]
GROUPS = {"sorted_set": "sorted-set"}


def _ordered(names, order):
    wanted = set(names)
    return [name for name in order if name in wanted]


def _key_spec(spec: dict) -> dict:
    out = {}
    if spec.get("notes"):
        out["notes"] = spec["notes"]
    out["flags"] = _ordered([flag if flag in ("RO", "RW", "OW", "RM") else flag.lower()
                             for flag in spec.get("flags", [])], KEY_FLAGS)
    begin = spec["begin_search"]
    if begin.get("index"):
        out["begin_search"] = {"type": "index", "spec": {"index": begin["index"]["pos"]}}
    elif begin.get("keyword"):
        out["begin_search"] = {"type": "keyword", "spec": {
            "keyword": begin["keyword"]["keyword"], "startfrom": begin["keyword"]["startfrom"]}}
    else:
        out["begin_search"] = {"type": "unknown", "spec": {}}
    find = spec["find_keys"]
    if find.get("range"):
        found = find["range"]
        out["find_keys"] = {"type": "range", "spec": {
            "lastkey": found["lastkey"], "keystep": found["step"], "limit": found["limit"]}}
    elif find.get("keynum"):
        found = find["keynum"]
        out["find_keys"] = {"type": "keynum", "spec": {
            "keynumidx": found["keynumidx"], "firstkey": found["firstkey"],
            "keystep": found["step"]}}
    else:
        out["find_keys"] = {"type": "unknown", "spec": {}}
    return out


def _legacy_range(specs: list, flags: set):
    """populateCommandLegacyRangeSpec: return (first, last, step), adding movablekeys."""
    if not specs:
        return 0, 0, 0
    plain = [spec for spec in specs if spec["begin_search"]["type"] == "index"
             and spec["find_keys"]["type"] == "range"]
    if len(specs) == 1 and plain:
        spec = specs[0]
        if "incomplete" in spec["flags"]:
            flags.add("movablekeys")
        first = spec["begin_search"]["spec"]["index"]
        last = spec["find_keys"]["spec"]["lastkey"]
        return first, last + first if last >= 0 else last, spec["find_keys"]["spec"]["keystep"]
    first, last, previous = None, 0, 0
    for spec in specs:
        if spec not in plain:
            flags.add("movablekeys")
            continue
        position = spec["begin_search"]["spec"]["index"]
        if spec["find_keys"]["spec"]["keystep"] != 1 or (previous and previous != position - 1):
            flags.add("movablekeys")
            continue
        if "incomplete" in spec["flags"]:
            flags.add("movablekeys")
        first = position if first is None else min(first, position)
        absolute = spec["find_keys"]["spec"]["lastkey"]
        if absolute >= 0:
            absolute += position
        last = max(last % 2 ** 32, absolute % 2 ** 32)  # C's unsigned comparison
        last = last - 2 ** 32 if last >= 2 ** 31 else last
        previous = last
    if first is None:
        flags.add("movablekeys")
        return 0, 0, 0
    return first, last, 1


def _argument(desc: dict) -> dict:
    out = {"name": desc["name"].lower(), "type": desc["type"]}
    if desc.get("key_spec_index", -1) != -1:
        out["key_spec_index"] = desc["key_spec_index"]
    for field in ("token", "summary", "since", "deprecated_since"):
        if desc.get(field):
            # The C generator pastes the text into a literal: '""' becomes an empty string.
            text = "" if desc[field] == '""' else desc[field]
            out[field] = text.upper() if field == "token" else text
    arg_flags = [flag for flag in ("optional", "multiple", "multiple_token") if desc.get(flag)]
    if arg_flags:
        out["flags"] = arg_flags
    if desc["type"] in ("oneof", "block"):
        out["arguments"] = [_argument(sub) for sub in desc.get("arguments", [])]
    return out


def _entry(name: str, desc: dict) -> dict:
    raw_flags = {flag.lower() for flag in desc.get("command_flags", [])}
    specs = [_key_spec(spec) for spec in desc.get("key_specs", [])]
    first, last, step = _legacy_range(specs, raw_flags)
    categories = {category.lower() for category in desc.get("acl_categories", [])}
    # setImplicitACLCategories
    if "write" in raw_flags:
        categories.add("write")
    if "readonly" in raw_flags and "scripting" not in categories:
        categories.add("read")
    if "admin" in raw_flags:
        categories.update(("admin", "dangerous"))
    for flag in ("pubsub", "fast", "blocking"):
        if flag in raw_flags:
            categories.add(flag)
    if "fast" not in categories:
        categories.add("slow")
    docs = {}
    for field in ("summary", "since"):
        if desc.get(field):
            docs[field] = desc[field]
    docs["group"] = GROUPS.get(desc["group"], desc["group"])
    if desc.get("complexity"):
        docs["complexity"] = desc["complexity"]
    doc_flags = _ordered([flag.lower() for flag in desc.get("doc_flags", [])], DOC_FLAGS)
    if doc_flags:
        docs["doc_flags"] = doc_flags
    for field in ("deprecated_since", "replaced_by"):
        if desc.get(field):
            docs[field] = desc[field]
    if desc.get("history"):
        docs["history"] = [list(pair) for pair in desc["history"]]
    if desc.get("arguments"):
        docs["arguments"] = [_argument(arg) for arg in desc["arguments"]]
    return {"name": name, "arity": desc["arity"],
            "flags": _ordered(raw_flags, COMMAND_FLAGS), "first": first, "last": last,
            "step": step, "acl": ["@" + category for category in
                                  _ordered(categories, ACL_CATEGORIES)],
            "tips": [tip.lower() for tip in desc.get("command_tips", [])],
            "key_specs": specs, "docs": docs, "subcommands": []}


def read_sources(args) -> dict:
    """Return {file name: parsed json} for every src/commands/*.json."""
    sources = {}
    if args.src:
        for name in sorted(os.listdir(args.src)):
            if name.endswith(".json"):
                with open(os.path.join(args.src, name)) as handle:
                    sources[name] = json.load(handle)
        return sources
    git = ["git", "--git-dir", args.git]
    listing = subprocess.check_output(git + ["ls-tree", "--name-only", args.ref + ":src/commands"])
    for name in sorted(listing.decode().split()):
        if name.endswith(".json"):
            text = subprocess.check_output(git + ["show", "%s:src/commands/%s" % (args.ref, name)])
            sources[name] = json.loads(text)
    return sources


def generate(sources: dict) -> dict:
    """Return {fullname: entry} for every command and subcommand (lowercase names)."""
    commands = {}
    for body in sources.values():
        for name, desc in body.items():
            if "ONLY_SENTINEL" in desc.get("command_flags", []):
                continue
            container = desc.get("container")
            full = ("%s|%s" % (container, name) if container else name).lower()
            commands[full] = _entry(full, desc)
    for full in sorted(commands):
        if "|" in full:
            parent = commands.get(full.split("|")[0])
            if parent is not None:
                parent["subcommands"].append(full)
    return commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--git", help="a redis repository's git directory")
    where.add_argument("--src", help="a redis checkout's src/commands directory")
    parser.add_argument("--ref", default="7.0.15", help="the tag or commit (with --git)")
    parser.add_argument("--out", default=os.path.join("kvtwist", "engine", "commanddocs.json"))
    args = parser.parse_args(argv)
    commands = generate(read_sources(args))
    lines = ['"%s": %s' % (name, json.dumps(commands[name], separators=(",", ":")))
             for name in sorted(commands)]
    with open(args.out, "w") as handle:
        handle.write("{\n" + ",\n".join(lines) + "\n}\n")
    print("%d commands written to %s" % (len(commands), args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
