"""Helpers shared by the JK sessions: typed links and per-request retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bmshost.driver import SessionContext
from bmshost.errors import FrameError, LinkError, LinkTimeout
from bmshost.link import CanLink, StreamLink

T = TypeVar("T")


def stream_link(ctx: SessionContext) -> StreamLink:
    if not isinstance(ctx.link, StreamLink):
        raise LinkError(f"{ctx.link.description}: JK {ctx.variant.name} needs a byte-stream link")
    return ctx.link


def can_link(ctx: SessionContext) -> CanLink:
    if not isinstance(ctx.link, CanLink):
        raise LinkError(f"{ctx.link.description}: JK {ctx.variant.name} needs a CAN link")
    return ctx.link


async def with_retries(ctx: SessionContext, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` up to ``1 + ctx.retries`` times; a bad frame or a timeout costs one try.
    Other link errors (port gone) end at once: retrying a dead port only delays reconnecting."""
    last: FrameError | LinkTimeout | None = None
    for n in range(ctx.retries + 1):
        try:
            return await attempt()
        except (FrameError, LinkTimeout) as exc:
            last = exc
            ctx.log.debug("%s: attempt %d failed: %s", what, n + 1, exc)
    assert last is not None
    raise last
