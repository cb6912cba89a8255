"""Addresses shown to users without their secrets: a store's or a queue's URL in an error
message, a summary line or a job's manifest."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit


def redacted(uri: str) -> str:
    """`uri` with its secrets masked: the password of `user:password@` and any
    `password` or `token` query value."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret = [key for key, _ in pairs if "password" in key.lower() or "token" in key.lower()]
    if netloc == parts.netloc and not secret:
        return uri  # as typed (rebuilding would change `sqlite:///x` to `sqlite:/x`)
    query = "&".join(f"{key}={'***' if key in secret else value}" for key, value in pairs)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
