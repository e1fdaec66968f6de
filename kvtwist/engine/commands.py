"""Every command family, loaded into the table: the one module that imports them all.

Each family registers its handlers into kvtwist.engine.table on import and imports only the
table, the keyspace and the wire replies, never this module or another family.
"""

# In this order the table lists them (COMMAND, HELP).
from kvtwist.engine import (  # noqa: F401, I001
    alltypes,
    strings,
    bitops,
    lcs,
    keys,
    db,
    dump,
    server,
    clients,
    monitor,
    admin,
    info,
    tracking,
    transactions,
    pubsub,
    notify,
    config,
    limits,
    slowlog,
    evict,
    objects,
    introspect,
    acl,
    t_hash,
    t_zset, t_zsetrange, t_zsetops, t_zsetblock,
    t_geo,
    t_list,
    t_blist,
    t_set,
    sort,
    t_stream, t_streaminfo,
)

FAMILIES = (strings, bitops, lcs, keys, db, dump, server, clients, monitor, admin, info,
            tracking, transactions, pubsub, notify, config, limits, slowlog, evict, objects,
            introspect, acl, t_hash, t_zset, t_zsetrange, t_zsetops, t_zsetblock, t_geo, t_list,
            t_blist, t_set, sort, t_stream, t_streaminfo)
