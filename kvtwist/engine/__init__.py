"""The command engine, pure: keyspace, command table, dispatch, one module per command family.

Imports only wire; never the reactor (time comes in as an injected clock).
"""
