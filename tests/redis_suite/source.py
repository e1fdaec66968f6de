"""Where Redis 7.0.15's test suite comes from: a directory given or found, or the release
tarball downloaded once into a cache and checked against its published SHA-256 (stdlib only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from typing import Optional

VERSION = "7.0.15"
URL = "https://download.redis.io/releases/redis-%s.tar.gz" % (VERSION,)
# From https://github.com/redis/redis-hashes (README lists every release's SHA-256).
SHA256 = "98066f5363504b26c34dd20fbcc3c957990d764cdf42576c836fc021073f4341"
# The copy beside the repository (../shared/redis-tests), then the machine's.
SHARED = (os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), os.pardir, "shared", "redis-tests"), "/work/shared/redis-tests")


def cache_dir() -> str:
    """The directory the downloaded suite is kept in ($XDG_CACHE_HOME or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kvtwist", "redis-%s-tests" % (VERSION,))


def is_suite(path: str) -> bool:
    """Whether ``path`` holds a Redis source tree's tests/ (with test_helper.tcl)."""
    return os.path.isfile(os.path.join(path, "tests", "test_helper.tcl"))


def locate(given: Optional[str], download: bool) -> str:
    """The suite's directory: ``given`` (or $KVTWIST_REDIS_TESTS), else ../shared's copy,
    else the cache, downloading it there first when ``download`` is set; SystemExit with the
    way out when there is none."""
    given = given or os.environ.get("KVTWIST_REDIS_TESTS")
    if given:
        if not is_suite(given):
            raise SystemExit("no Redis test suite in %s (no tests/test_helper.tcl)" % (given,))
        return given
    for candidate in SHARED + (cache_dir(),):
        if is_suite(candidate):
            return candidate
    if not download:
        raise SystemExit("no Redis %s test suite found: pass --suite DIR, set "
                         "KVTWIST_REDIS_TESTS, or add --download to fetch %s into %s"
                         % (VERSION, URL, cache_dir()))
    return fetch(cache_dir())


def fetch(target: str, url: str = URL, sha256: str = SHA256) -> str:
    """Download the release tarball, check its SHA-256, extract its tests/ (and COPYING) into
    ``target``; return ``target``. O(size of the tarball, ~3 MB)."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix="redis-tests-", dir=parent)
    try:
        archive = os.path.join(work, "redis.tar.gz")
        print("downloading %s" % (url,), flush=True)
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                with open(archive, "wb") as out:
                    shutil.copyfileobj(response, out)
        except OSError as error:
            raise SystemExit("cannot download %s: %s" % (url, error))
        digest = file_sha256(archive)
        if digest != sha256:
            raise SystemExit("%s: SHA-256 %s, expected %s" % (url, digest, sha256))
        extract_tests(archive, os.path.join(work, "suite"))
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(os.path.join(work, "suite"), target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_tests(archive: str, target: str) -> None:
    """Extract <top>/tests/** and <top>/COPYING of a Redis source tarball into ``target``,
    refusing members that are links or that would land outside it."""
    os.makedirs(target)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            _, _, inner = member.name.partition("/")
            if not (inner.startswith("tests/") or inner == "COPYING"):
                continue
            if member.issym() or member.islnk() or ".." in inner.split("/"):
                continue
            destination = os.path.join(target, inner)
            if member.isdir():
                os.makedirs(destination, exist_ok=True)
            elif member.isfile():
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with tar.extractfile(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(destination, member.mode & 0o755 | 0o600)
