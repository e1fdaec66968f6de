"""The ACL command, as Redis 7.0's: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT,
DRYRUN, LOG, GENPASS, SAVE, LOAD and HELP.

Users live in engine/users.py (``auth_for(store).users``), their rules in acl_rules.py,
the per-command check in acl_check.py, the log in acl_log.py, the ACL file in acl_file.py.
"""

from __future__ import annotations

import os

from kvtwist.engine.acl_check import dryrun_text
from kvtwist.engine.acl_commands import CATEGORIES, category_of, universe
from kvtwist.engine.acl_log import log_for
from kvtwist.engine.acl_rules import RuleError, User, has_spaces, merge_selectors
from kvtwist.engine.acl_file import load_file, log_out_users, save_file, user_lines
from kvtwist.engine.table import (
    _LOOKUP, arity_error, parse_int, register, sub_dispatch, subcommands)
from kvtwist.engine.users import DEFAULT_USER, auth_for
from kvtwist.wire.replies import OK, CommandError, Pairs, Status

NO_ACLFILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to "
              "specify users via the ACL SETUSER command and then issue a CONFIG REWRITE "
              "(assuming you have a Redis configuration file set) in order to store users in "
              "the Redis configuration.")
GENPASS_MAX_BITS = 4096


def _c(raw: bytes) -> str:
    # sdscatfmt's %s: up to the first NUL.
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# -- SETUSER, DELUSER --------------------------------------------------------------------


def set_user(store, name: bytes, ops: list) -> None:
    """ACLStringSetUser: apply ``ops`` to user ``name`` (made if new) all or nothing;
    raise CommandError with Redis's text. O(ops x commands) at worst."""
    auth = auth_for(store)
    merged = merge_selectors(ops)
    if isinstance(merged, int):
        raise CommandError("ERR Unmatched parenthesis in acl selector starting at '%s'."
                           % (_c(ops[merged]),))
    existing = auth.users.get(name)
    temp = existing.copy() if existing is not None else User(name, auth.pubsub_default)
    for op in merged:
        try:
            temp.apply(op, auth.pubsub_default)
        except RuleError as e:
            raise CommandError("ERR Error in ACL SETUSER modifier '%s': %s"
                               % (_c(op), e.reason))
    if existing is None:
        auth.users[name] = temp
        return
    kill_pubsub_clients(store, temp, existing)
    existing.copy_from(temp)


def kill_pubsub_clients(store, new: User, original: User) -> None:
    """ACLKillPubsubClientsIfNeeded: close the subscribers of ``original`` whose channels
    ``new`` no longer allows. O(clients x subscriptions x channel patterns) at worst."""
    from kvtwist.engine.acl_check import channel_allowed
    from kvtwist.engine.clients import kill

    if any(selector.allchannels for selector in new.selectors):
        return
    upcoming = [entry for selector in new.selectors for entry in selector.channels]
    kept = set(entry[0] for entry in upcoming)
    if not any(selector.allchannels for selector in original.selectors) and all(
            entry[0] in kept for selector in original.selectors for entry in selector.channels):
        return
    pubsub = getattr(store, "pubsub", None)
    if pubsub is None:
        return
    current = store.current
    for session in list(store.clients.values()):
        state = pubsub.clients.get(session.id)
        if session.user is not original or state is None or not state.total():
            continue
        if (any(not channel_allowed(upcoming, pattern, True) for pattern in state.patterns)
                or any(not channel_allowed(upcoming, channel, False)
                       for channel in list(state.channels) + list(state.shard))):
            kill(current if current is not None else session, session)


def _setuser(session, argv):
    name = argv[2]
    ops = list(argv[3:])
    if has_spaces(name):
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    set_user(session.store, name, ops)
    return OK


def _deluser(session, argv):
    users = auth_for(session.store).users
    if any(name == DEFAULT_USER for name in argv[2:]):
        raise CommandError("ERR The 'default' user cannot be removed")
    gone = []
    for name in argv[2:]:
        user = users.pop(name, None)
        if user is not None:
            gone.append(user)
    log_out_users(session.store, gone)
    return len(gone)


# -- GETUSER, LIST, USERS, WHOAMI ----------------------------------------------------------


def _selector_fields(selector) -> list:
    return [(b"commands", selector.describe_commands().encode()),
            (b"keys", selector.keys_text().encode("utf-8", "surrogateescape")),
            (b"channels", selector.channels_text().encode("utf-8", "surrogateescape"))]


def _getuser(session, argv):
    user = auth_for(session.store).users.get(argv[2])
    if user is None:
        return None
    fields = [(b"flags", [flag.encode() for flag in user.flags()]),
              (b"passwords", [digest.encode() for digest in user.passwords])]
    fields.extend(_selector_fields(user.root))
    fields.append((b"selectors", [Pairs(_selector_fields(selector))
                                  for selector in user.selectors[1:]]))
    return Pairs(fields)


# -- CAT, DRYRUN, LOG, GENPASS ---------------------------------------------------------------


def _cat(session, argv):
    if len(argv) == 2:
        return [category.encode() for category in CATEGORIES]
    if len(argv) != 3:
        raise _syntax(argv)
    category = category_of(argv[2])
    if category is None:
        raise CommandError("ERR Unknown category '%s'" % (_c(argv[2][:128]),))
    return [info.name.encode() for info in universe().ordered
            if category in info.categories]


def _dryrun(session, argv):
    user = auth_for(session.store).users.get(argv[2])
    if user is None:
        raise CommandError("ERR User '%s' not found" % (_c(argv[2]),))
    target = argv[3:]
    command = _LOOKUP.get(target[0]) or _LOOKUP.get(target[0].lower())
    if command is None:  # a Redis command kvstore lacks: its rules still apply
        command = _absent(target[0])
    info = universe().resolve(command, target) if command is not None else None
    if info is None:
        raise CommandError("ERR Command '%s' not found" % (_c(target[0]),))
    entry_arity = command.arity if info.parent is None else _sub_arity(command, info)
    if (len(target) != entry_arity) if entry_arity > 0 else (len(target) < -entry_arity):
        raise CommandError(arity_error(info.name).message)
    text = dryrun_text(user, command, target)
    return OK if text is None else text


def _sub_arity(command, info) -> int:
    from kvtwist.engine.introspect import command_data, lookup

    entry = lookup(info.name.encode()) or command_data().get(info.name)
    return entry["arity"] if entry is not None else command.arity


class _Absent:
    """A Redis 7.0 command kvstore does not implement, as ACL DRYRUN sees it."""

    no_auth = False

    def __init__(self, name: bytes, entry: dict) -> None:
        self.name = name
        self.arity = entry["arity"]
        self.no_auth = "no_auth" in entry["flags"]


def _absent(name: bytes):
    from kvtwist.engine.introspect import command_data

    lowered = name.lower()
    entry = command_data().get(lowered.decode("utf-8", "replace"))
    if entry is None or b"|" in lowered:
        return None
    return _Absent(lowered, entry)


def _log(session, argv):
    log = log_for(session.store)
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.reset()
            return OK
        count = parse_int(argv[2])
    elif len(argv) > 3:
        raise _syntax(argv)
    return log.reply(count, session.store.clock.seconds())


def _genpass(session, argv):
    bits = 256
    if len(argv) == 3:
        bits = parse_int(argv[2])
    elif len(argv) > 3:
        raise _syntax(argv)
    if bits <= 0 or bits > GENPASS_MAX_BITS:
        raise CommandError("ERR ACL GENPASS argument must be the number of bits for the output "
                           "password, a positive number up to %d" % (GENPASS_MAX_BITS,))
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()


# -- LOAD, SAVE -----------------------------------------------------------------------------


def _aclfile(session) -> str:
    path = session.store.config.get("aclfile", "")
    if not path:
        raise CommandError(NO_ACLFILE)
    return path


def _load(session, argv):
    errors = load_file(session.store, _aclfile(session))
    if errors:
        raise CommandError("ERR " + errors)
    return OK


def _save(session, argv):
    try:
        save_file(session.store, _aclfile(session))
    except OSError:
        raise CommandError("ERR There was an error trying to save the ACLs. Please check the "
                           "server logs for more information")
    return OK


def _syntax(argv) -> CommandError:
    return CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. Try "
                        "ACL HELP." % (_c(argv[1][:128]),))


_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]

ACL_SUBCOMMANDS = subcommands("acl")
ACL_SUBCOMMANDS.update({
    b"setuser": (-3, _setuser),
    b"deluser": (-3, _deluser),
    b"getuser": (3, _getuser),
    b"list": (2, lambda session, argv: user_lines(session.store)),
    b"users": (2, lambda session, argv: sorted(auth_for(session.store).users)),
    b"whoami": (2, lambda session, argv: session.user.name),
    b"cat": (-2, _cat),
    b"dryrun": (-4, _dryrun),
    b"log": (-2, _log),
    b"genpass": (-2, _genpass),
    b"load": (2, _load),
    b"save": (2, _save),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in _HELP]),
})


@register("acl", -2, "noscript loading stale", 0, 0, 0)
def cmd_acl(session, argv):
    """ACL subcommand [arg ...]: see each subcommand for its cost (CAT, LIST: O(commands x
    users))."""
    return sub_dispatch(ACL_SUBCOMMANDS, argv, session)
