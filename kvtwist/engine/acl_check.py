"""The ACL permission check of every command a restricted user runs (Redis's
ACLCheckAllUserCommandPerm), and its NOPERM errors.

Session.execute tests only its user's ``all_allowed`` flag for the unrestricted default
user. For a restricted user it first tests the command's range (``User.ranges``, made by
``_remember`` after a full check allowed the command): ``low <= argv[position] < high``, a
dict lookup and two bytes comparisons inline, no call and no allocation; it calls
``denied`` only when there is no range or the key lies outside it. There the check is O(1)
for the command (a set lookup), then O(keys x key patterns) and O(channels x channel
patterns), each match linear in the key (engine/glob.py).
"""

from __future__ import annotations

from kvtwist.engine.acl_commands import CURRENT, universe
from kvtwist.engine.acl_keys import key_matcher, key_range
from kvtwist.engine.acl_log import CHANNEL, COMMAND, KEY, record
from kvtwist.wire.replies import Error

OK = None
RANK = {COMMAND: 0, KEY: 1, CHANNEL: 2}  # ACL_DENIED_CMD < KEY < CHANNEL, as in acl.c

_EXEC_REASONS = {
    COMMAND: "no permission to execute the command or subcommand",
    KEY: "no permission to touch the specified keys",
    CHANNEL: "no permission to access one of the channels used as arguments",
}


def selector_check(selector, info, command, argv):
    """ACLSelectorCheckCmd: None when ``selector`` allows the call, else (reason, position)."""
    if not selector.allcommands and not command.no_auth and info.name not in selector.allowed:
        firstargs = selector.firstargs.get(info.name)
        if not firstargs or len(argv) < 2:
            return COMMAND, 0
        first = argv[1].lower()
        if all(arg.lower() != first for arg in firstargs):
            return COMMAND, 0
    if selector.allkeys:
        pass
    elif info.single is not None:
        position, need = info.single
        if position < len(argv):
            matcher = selector.matchers.get(need) or key_matcher(selector, need)
            if not matcher(argv[position]):
                return KEY, position
    elif info.keys is not None:
        matchers = selector.matchers
        for position, need in info.keys(argv):
            matcher = matchers.get(need) or key_matcher(selector, need)
            if not matcher(argv[position]):
                return KEY, position
    channels = info.channels
    if channels is not None and not selector.allchannels:
        start, count, is_pattern = channels
        stop = len(argv) if count == -1 else min(start + count, len(argv))
        for position in range(start, stop):
            if not channel_allowed(selector.channels, argv[position], is_pattern):
                return CHANNEL, position
    return OK


def channel_allowed(channels, channel: bytes, is_pattern: bool) -> bool:
    """ACLCheckChannelAgainstList: a PSUBSCRIBE pattern must equal an ACL pattern; a
    channel must match one. O(patterns x len(channel))."""
    for pattern, glob in channels:
        if (pattern == channel) if is_pattern else glob.matches(channel):
            return True
    return False


def user_check(user, command, argv):
    """ACLCheckAllUserCommandPerm: None if some selector allows the call, else
    (reason, position, info) of the most relevant denial; None also for a container
    whose subcommand does not exist (the command answers that itself)."""
    info = CURRENT.get(command.name)
    if info is None:  # a command registered since the universe was built
        info = universe().by_command.get(command.name)
        if info is None:
            return OK
    if info.subs:
        if len(argv) < 2:
            return OK
        info = info.by_arg.get(argv[1].lower())
        if info is None:
            return OK
    selectors = user.selectors
    if len(selectors) == 1:
        result = selector_check(selectors[0], info, command, argv)
        return OK if result is OK else (result[0], result[1], info)
    worst, worst_position = COMMAND, 0
    for selector in selectors:
        result = selector_check(selector, info, command, argv)
        if result is OK:
            return OK
        reason, position = result
        if RANK[reason] > RANK[worst] or (reason == worst and position > worst_position):
            worst, worst_position = reason, position
    return worst, worst_position, info


NO_KEY = (1 << 62, (), None)  # the plan of an allowed command whose keys need no check
# The range of an allowed command whose keys need no check: argv[0], the command's name as
# sent, is ASCII (the command table's names are), so b"" <= argv[0] < b"\xff" always holds.
ANY_NAME = (0, b"", b"\xff")
NO_RANGE = (0, b"\xff", b"")  # what Session.execute tests without a range: always fails


def denied(session, command, argv):
    """Return the NOPERM error for a call ``session``'s user may not make (logging it), or
    None when it may.

    A user with one selector keeps a plan per command it was allowed to run that has at
    most one key at a fixed place: (its position, the key prefixes its patterns are when
    all are ``prefix*``, else None and the key matcher), so the common call costs a dict
    lookup and one ``startswith``; the plans go whenever the user changes."""
    user = session.user
    plan = user.plans.get(command.name)
    if plan is not None:
        position, prefixes, matcher = plan
        if position >= len(argv):
            return None
        key = argv[position]
        if (key.startswith(prefixes) and key) if prefixes is not None else matcher(key):
            return None
    result = user_check(user, command, argv)
    if result is OK:
        if plan is None and len(user.selectors) == 1:
            _remember(user, command)
        return None
    reason, position, info = result
    record(session, reason, info.name.encode() if reason == COMMAND else argv[position],
           argv=argv)
    if session.in_exec:
        return Error("NOPERM ACLs rules changed between the moment the transaction was "
                     "accumulated and the EXEC call. This command is no longer allowed for "
                     "the following reason: " + _EXEC_REASONS[reason])
    return Error(noperm(reason, info.name))


def noperm(reason: str, name: str) -> str:
    """Return Redis's NOPERM text for a denial."""
    if reason == COMMAND:
        return "NOPERM this user has no permissions to run the '%s' command" % (name,)
    if reason == KEY:
        return "NOPERM this user has no permissions to access one of the keys used as arguments"
    return ("NOPERM this user has no permissions to access one of the channels used as "
            "arguments")


def dryrun_text(user, command, argv) -> bytes:
    """ACL DRYRUN's answer text when denied, else None."""
    result = user_check(user, command, argv)
    if result is OK:
        return None
    reason, position, info = result
    if reason == COMMAND:
        text = "This user has no permissions to run the '%s' command" % (info.name,)
        return text.encode()
    kind = "key" if reason == KEY else "channel"
    return b"This user has no permissions to access the '%s' %s" % (
        argv[position], kind.encode())


def _remember(user, command) -> None:
    # The plan and the range of an allowed command without subcommands or channels (see
    # denied and User.ranges). A range needs its key present in every call the arity
    # admits, and the key's patterns to be one literal or prefix (acl_keys.key_range).
    info = CURRENT.get(command.name)
    if info is None or info.subs or info.channels is not None:
        return
    selector = user.selectors[0]
    if not (selector.allcommands or command.no_auth or info.name in selector.allowed):
        return  # allowed for this first argument only (+select|0)
    if selector.allkeys or info.keys is None:
        user.plans[command.name] = NO_KEY
        user.ranges[command] = ANY_NAME
    elif info.strictest is not None:
        position, need = info.strictest
        matcher = selector.matchers.get(need) or key_matcher(selector, need)
        user.plans[command.name] = (position, selector.prefixes[need], matcher)
        bounds = key_range(selector, need)
        if bounds is not None and position < abs(command.arity):
            user.ranges[command] = (position, bounds[0], bounds[1])



def unrestricted_key_access(user, argv) -> bool:
    """ACLUserCheckCmdWithUnrestrictedKeyAccess for SORT's BY and GET: whether a selector
    that allows this SORT call also grants reading every key (allkeys, ``~*``, ``%R~*``).
    O(selectors x their patterns)."""
    from kvtwist.engine.acl_commands import READ
    from kvtwist.engine.table import TABLE

    command = TABLE[argv[0].lower()]
    info = CURRENT.get(command.name) or universe().by_command.get(command.name)
    for selector in user.selectors:
        if info is not None and selector_check(selector, info, command, argv) is not OK:
            continue
        if selector.allkeys or any(entry[0] == b"*" and entry[1] & READ
                                   for entry in selector.patterns):
            return True
    return False
