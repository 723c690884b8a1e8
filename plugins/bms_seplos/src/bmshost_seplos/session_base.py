"""Request/response with retries over a shared StreamLink, common to the Seplos sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.link import Framer, StreamLink

T = TypeVar("T")


class StreamSession(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.link, StreamLink):
            raise TypeError(f"{type(self).__name__} needs a stream link")
        self.stream: StreamLink = ctx.link

    async def transact(self, tx: bytes, framer: Framer, parse: Callable[[bytes], T]) -> T:
        """Send ``tx`` and parse the reply; a timeout or bad frame is retried ``ctx.retries``
        times. The link is held per attempt so daisy-chained packs take turns."""
        error: Exception | None = None
        for _ in range(max(0, self.ctx.retries) + 1):
            async with self.stream.exclusive():
                try:
                    return parse(await self.stream.request(tx, framer, self.ctx.timeout))
                except (FrameError, LinkTimeout) as exc:
                    error = exc
        assert error is not None
        raise error
