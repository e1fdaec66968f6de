"""Every command family, loaded into the table: the one module that imports them all.

Each family registers its handlers into kvtwist.engine.table on import and imports only the
table, the keyspace and the wire replies, never this module or another family.
"""

# In this order the table lists them (COMMAND, HELP): strings, keys, server, info, pub/sub.
from kvtwist.engine import strings, keys, db, server, info, tracking, transactions, evict  # noqa: F401, I001

FAMILIES = (strings, keys, db, server, info, tracking, transactions)
