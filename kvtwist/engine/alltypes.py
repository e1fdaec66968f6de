"""Loads every typed-value module, so that their types and operations are registered
(engine/types.py) before records are decoded or commands run: storage and the command
loader import this module. Each type family adds its value module here."""

from __future__ import annotations

import kvtwist.engine.types  # noqa: F401  (the registries, even with no family loaded)
import kvtwist.engine.listtype  # noqa: F401  (lists)
import kvtwist.engine.hashtype  # noqa: F401  (hashes)
import kvtwist.engine.zsettype  # noqa: F401  (sorted sets)
import kvtwist.engine.settype  # noqa: F401  (sets)
import kvtwist.engine.streamtype  # noqa: F401  (streams)
