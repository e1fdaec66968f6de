"""Durability: record format, journal and group commit, data directory, writer, fsck.

Imports wire, engine and loop.
"""
