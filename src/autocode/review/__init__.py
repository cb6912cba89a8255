"""The review queue: routed notes, certified coders' decisions, and the labels they yield."""

from autocode.review.store import (
    ACCEPT,
    ACTIONS,
    ADD,
    DONE,
    IN_REVIEW,
    OPEN,
    REJECT,
    STATUSES,
    EnqueueResult,
    NewCase,
    ReviewCase,
    ReviewDecision,
    ReviewStore,
    default_queue_url,
    reviewed_codes,
)

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
