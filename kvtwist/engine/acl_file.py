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
from kvtwist.engine.config import REWRITE_DIRECTIVES
from kvtwist.engine.table import define_config


def parse_file(store, path: str):
    """Return (users by name, errors text): users is None when there were errors."""
    from kvtwist.engine.users import auth_for

    auth = auth_for(store)
    try:
        with open(acl_path(store, path), "rb") as handle:
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
    path = acl_path(store, path)
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


def acl_path(store, path: str) -> str:
    """Return where ``aclfile`` is: a relative path is under ``dir``, the directory
    redis-server works in (it chdirs there), whatever kvstore's own working directory."""
    return os.path.join(store.config.get("dir", "") or ".", path)


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


# -- "user" directives of the config file ---------------------------------------------------

DUPLICATE = "Duplicate user found. A user can only be defined once in config files"
BOTH = ("Configuring Redis with users defined in redis.conf and at the same setting an ACL "
        "file path is invalid. This setup is very likely to lead to configuration errors and "
        "security holes, please define either an ACL file or declare users directly in your "
        "redis.conf, but not both.")


def check_config_user(store, words: list, seen: set) -> list:
    """ACLAppendUserForLoading: check a config file's ``user NAME rules...`` (``words``
    without ``user``) and return its rules merged; raise ValueError with Redis's "Error in
    user declaration" text. ``seen`` collects the names. O(rules x commands)."""
    from kvtwist.engine.users import auth_for

    name = words[0]
    if name in seen:
        raise ValueError("Error in user declaration '%s': %s" % (_text(name), DUPLICATE))
    merged = merge_selectors(words[1:])
    if isinstance(merged, int):
        raise ValueError("Error in user declaration '%s': Unmatched parenthesis in acl "
                         "selector starting at '%s'." % (_text(words[1 + merged]),
                                                         _text(words[1 + merged])))
    fake = User(name, auth_for(store).pubsub_default)
    for op in merged:
        try:
            fake.apply(op, auth_for(store).pubsub_default)
        except RuleError as e:
            if not e.reason.startswith("Unknown command"):  # checked again at load
                raise ValueError("Error in user declaration '%s': %s" % (_text(op), e.reason))
    seen.add(name)
    return merged


def load_config_users(store, declared: list) -> None:
    """ACLLoadConfiguredUsers: create each (name, merged rules) user; ``default`` is reset
    first. Raise ValueError naming a name with spaces. O(users x rules x commands)."""
    from kvtwist.engine.users import DEFAULT_USER, auth_for

    auth = auth_for(store)
    for name, rules in declared:
        if has_spaces(name):
            raise ValueError("Spaces not allowed in ACL usernames")
        user = auth.users.get(name)
        if user is None:
            user = auth.users[name] = User(name, auth.pubsub_default)
        elif name == DEFAULT_USER:
            user.apply(b"reset", auth.pubsub_default)
        for op in rules:
            try:
                user.apply(op, auth.pubsub_default)
            except RuleError as e:
                raise ValueError("Error loading ACL rule '%s' for the user named '%s': %s"
                                 % (_text(op), _text(name), e.reason))


def rewrite_lines(store) -> list:
    """CONFIG REWRITE's ``user`` lines (rewriteConfigUserOption): none with an ACL file
    (which holds the users), else every user's ACL LIST line."""
    if store.config.get("aclfile", ""):
        return []
    return [line.decode("utf-8", "surrogateescape") for line in user_lines(store)]


REWRITE_DIRECTIVES["user"] = rewrite_lines
