"""The ACL file (``aclfile``): ACL LOAD and ACL SAVE, as Redis 7.0's ACLLoadFromFile and
ACLSaveToFile, and loading it at start-up.

Each line is ``user NAME rules...``; blank lines are skipped, anything else is an error.
A load applies all or nothing: with any error nothing changes. On success the default user
takes the file's rules in place (its connections stay logged in) while every connection
logged in as another user is closed, as Redis frees those users. A save writes a
temporary file and renames it over the old one.

``aclfile`` is set only at start (``--aclfile`` or a config file): CONFIG SET refuses it,
as Redis 7 does, so a client cannot make the server read or write files where it likes.
"""

from __future__ import annotations

import os

from kvtwist.engine.acl_rules import RuleError, User, default_user, has_spaces, merge_selectors
from kvtwist.engine.table import define_config


def parse_file(store, path: str):
    """Return (users by name, errors text): users is None when there were errors."""
    from kvtwist.engine.users import auth_for

    auth = auth_for(store)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as e:
        return None, "Error loading ACLs, opening file '%s': %s" % (path, e.strerror)
    errors = []
    users = {}
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line.strip(b" \t\r\n")
        if not line:
            continue
        argv = line.split(b" ")
        if argv[0] != b"user" or len(argv) < 2:
            errors.append("%s:%d should start with user keyword followed by the username. "
                          % (path, number))
            continue
        name = argv[1]
        if has_spaces(name):
            errors.append("'%s:%d: username '%s' contains invalid characters. "
                          % (path, number, _text(name)))
            continue
        if name in users:
            errors.append("WARNING: Duplicate user '%s' found on line %d. "
                          % (_text(name), number))
            continue
        user = users[name] = User(name, auth.pubsub_default)
        merged = merge_selectors(argv[2:])
        if isinstance(merged, int):
            errors.append("%s:%d: Unmatched parenthesis in selector definition."
                          % (path, number))
            continue
        syntax_error = False
        for op in merged:
            try:
                user.apply(op.strip(b"\t\r\n"), auth.pubsub_default)
            except RuleError as e:
                if e.reason.startswith("Unknown command"):
                    errors.append("%s:%d: Error in applying operation '%s': %s. "
                                  % (path, number, _text(op), e.reason))
                elif not syntax_error:
                    errors.append("%s:%d: %s. " % (path, number, e.reason))
                    syntax_error = True
    if errors:
        return None, "".join(errors) + ("WARNING: ACL errors detected, no change to the "
                                        "previously active ACL rules was performed")
    return users, None


def load_file(store, path: str):
    """ACL LOAD: replace the users with the file's; return None, or the errors text (then
    nothing changed). O(size of the file x commands)."""
    from kvtwist.engine.users import DEFAULT_USER, auth_for

    users, errors = parse_file(store, path)
    if errors:
        return errors
    auth = auth_for(store)
    old = [user for name, user in auth.users.items() if name != DEFAULT_USER]
    auth.default.copy_from(users.get(DEFAULT_USER) or default_user())
    users[DEFAULT_USER] = auth.default
    auth.users = users
    log_out_users(store, old)
    return None


def save_file(store, path: str) -> None:
    """ACL SAVE: write every user's ACL LIST line to ``path`` through a temporary file;
    raise OSError on failure."""
    data = b"".join(line + b"\n" for line in user_lines(store))
    temporary = "%s.tmp-%d-%d" % (path, os.getpid(), int(store.clock.seconds() * 1000))
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def user_lines(store) -> list:
    """ACL LIST's lines ("user NAME RULES"), by name as Redis's radix tree orders them."""
    from kvtwist.engine.users import auth_for

    users = auth_for(store).users
    return [b"user " + name + b" " + users[name].describe().encode("utf-8", "surrogateescape")
            for name in sorted(users)]


def log_out_users(store, users) -> None:
    """Close every connection logged in as one of ``users`` (ACLFreeUserAndKillClients):
    it becomes the unauthenticated default user until it closes. O(clients)."""
    from kvtwist.engine.clients import kill
    from kvtwist.engine.users import auth_for

    auth = auth_for(store)
    current = store.current
    for session in list(store.clients.values()):
        if any(session.user is user for user in users):
            session.user = auth.default
            session.authenticated = False
            kill(current if current is not None else session, session)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _load_at_start(store, path: str) -> None:
    # Redis aborts its start-up when the ACL file cannot be loaded.
    if path:
        errors = load_file(store, path)
        if errors:
            raise ValueError("Aborting because of ACL errors: %s" % (errors,))


def _pubsub_default(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("allchannels", "resetchannels"):
        raise ValueError("argument(s) must be one of the following: allchannels, "
                         "resetchannels")
    return lowered == "allchannels"


def _set_pubsub_default(store, value: bool) -> None:
    from kvtwist.engine.users import auth_for

    auth_for(store).pubsub_default = value


define_config("aclfile", "", str, _load_at_start, mutable=False)
define_config("acl-pubsub-default", "resetchannels", _pubsub_default, _set_pubsub_default,
              show=lambda value: "allchannels" if value else "resetchannels")
