"""The kvstore server: one protocol for every dialect, its factory, twistd options, service.

Imports wire, engine, loop and storage.
"""
