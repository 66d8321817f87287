"""Evidence that one party is waiting for another, for tests of locks and serialization.

"It has not happened within N seconds" also passes when the other party has simply not got
that far yet, and a loaded machine makes that likely. These look at the waiting itself: a test
waits (tests.waiting) until the waiter is seen blocked, then lets it go and checks the order in
which things happened.
"""

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from types import CodeType

from sqlalchemy import Engine, make_url, text


def blocked_at(thread: threading.Thread, function: Callable[..., object], statement: str) -> bool:
    """Whether `thread` is stopped inside `function`, on the line reading `statement`, with no
    Python code running above it: i.e. in a C call of that line, such as a lock's acquire.

    Another thread sees it there only while it has let go of the GIL, which acquiring a lock
    does only when the lock is taken by someone else (a free lock is taken at once). So name a
    statement whose only call is the blocking one, e.g. "with entry.lock:".
    """
    code = inspect.unwrap(function).__code__
    line = _line_of(code, statement)
    frame = sys._current_frames().get(thread.ident or -1)
    return frame is not None and frame.f_code is code and frame.f_lineno == line


@functools.cache
def _line_of(code: CodeType, statement: str) -> int:
    lines, first = inspect.getsourcelines(code)
    found = [first + n for n, line in enumerate(lines) if line.strip() == statement]
    if len(found) != 1:
        raise ValueError(f"{statement!r} is not exactly one line of {code.co_qualname}")
    return found[0]


def with_application_name(database_url: str, name: str) -> str:
    """The PostgreSQL URL with sessions named `name`, so pg_stat_activity tells them apart from
    every other session on the server (other tests' included)."""
    url = make_url(database_url).update_query_dict({"application_name": name})
    return url.render_as_string(hide_password=False)


def waits_for_advisory_lock(engine: Engine, application_name: str, key: int) -> bool:
    """Whether a session named `application_name` is waiting, right now, for the advisory lock
    `key`: PostgreSQL lists its request in pg_locks as not granted."""
    # pg_locks shows a bigint key as its high half in classid and its low half in objid.
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE a.application_name = :name AND l.locktype = 'advisory' AND NOT l.granted"
        " AND l.classid::bigint = :high AND l.objid::bigint = :low AND l.objsubid = 1"
    )
    with engine.connect() as connection:
        waiting = connection.execute(query, {"name": application_name, "high": high, "low": low})
        return bool(waiting.scalar_one())
