"""The review queue: routed notes, certified coders' decisions, and the labels they yield.

The store's names are loaded on first use: every `autocode` command imports this package
(for the `review` sub-commands), and most never touch SQLAlchemy.
"""

from typing import Any

__all__ = [
    "ACCEPT",
    "ACTIONS",
    "ADD",
    "DONE",
    "IN_REVIEW",
    "OPEN",
    "REJECT",
    "STATUSES",
    "EnqueueResult",
    "NewCase",
    "ReviewCase",
    "ReviewDecision",
    "ReviewStore",
    "default_queue_url",
    "reviewed_codes",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from autocode.review import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
