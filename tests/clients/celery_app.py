"""A Celery application for tests/clients/test_celery.py: broker and result backend are the
kvstore named by KVTWIST_CELERY_URL (databases 0 and 1)."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("KVTWIST_CELERY_URL", "redis://127.0.0.1:7379")

app = Celery("kvtwist_celery_test", broker=URL + "/0", backend=URL + "/1")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                result_expires=3600,
                # kombu's ack emulation takes a redis-py Lock, released by a Lua script
                # (EVALSHA), which kvstore does not have: without it, tasks run the same.
                broker_transport_options={"ack_emulation": False},
                # Remote control (the pidbox) also binds through a Lua script.
                worker_enable_remote_control=False)


@app.task
def add(x: int, y: int) -> int:
    """Return the sum."""
    return x + y


@app.task
def fail() -> None:
    """Raise, so that the failure is stored as the task's result."""
    raise ValueError("planned failure")
