"""kvstore and kvproxy in one process: ``twistd -ny kv.tac`` (store on 7379, proxy on 7380).

Environment overrides: KVTWIST_STORE_LISTEN, KVTWIST_PROXY_LISTEN, KVTWIST_BACKEND,
KVTWIST_DATA, KVTWIST_FSYNC.
"""

import os

from twisted.application import service

from kvtwist.proxy import tap as proxytap

from kvtwist.serve import tap

application = service.Application("kvtwist")

store_options = tap.Options()
store_options.parseOptions([
    "--listen", os.environ.get("KVTWIST_STORE_LISTEN", tap.DEFAULT_LISTEN),
    "--data", os.environ.get("KVTWIST_DATA", "kvdata"),
    "--fsync", os.environ.get("KVTWIST_FSYNC", "always"),
])
tap.makeService(store_options).setServiceParent(application)

proxy_options = proxytap.Options()
proxy_options.parseOptions([
    "--listen", os.environ.get("KVTWIST_PROXY_LISTEN", proxytap.DEFAULT_LISTEN),
    "--backend", os.environ.get("KVTWIST_BACKEND", "tcp:127.0.0.1:7379"),
])
proxytap.makeService(proxy_options).setServiceParent(application)
