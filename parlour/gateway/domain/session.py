"""One WebSocket session as a sans-I/O state machine, shaped like the websockets library's protocol.

Inputs go in (`receive` a decoded client frame, `deliver` a live frame, `answer` a frame meant for this
session, `tick` the clock, `close`), and outputs are drained (`data_to_send`, `commands_to_send`,
`close_to_send`). No sockets, no asyncio, no clock of its own: the adapter owns the I/O and the time, and
tests drive every path by hand.

States::

    OPEN ──close(code)──▶ CLOSING ──closed()──▶ CLOSED
      └──────────────────closed() (the peer went away)──┘

In CLOSING nothing new is accepted; the close frame goes out after the buffered frames when the close
flushes (a drain for restart, an abuse close after its error frames), or at once, the buffer dropped, when
it does not (a slow consumer, a missed pong).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from parlour.gateway.domain.bucket import TokenBucket
from parlour.gateway.domain.frames import PING_FRAME, error_frame, hello_frame, pong_frame
from parlour.gateway.domain.protocol import (
    RESUME_DONE,
    ClientPing,
    ClientPong,
    Close,
    CloseCode,
    Destination,
    ErrorCode,
    Forward,
    FrameInfo,
    Inbound,
    Rejected,
    ResumeRequest,
)
from parlour.gateway.domain.resume import Admission, ResumeGate


class SessionState(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Per-connection limits (from settings)."""

    send_buffer_frames: int = 1024
    send_buffer_bytes: int = 4 * 1024 * 1024
    hold_frames: int = 4096
    rate_per_second: float = 20.0
    rate_burst: int = 100
    abuse_burst: int = 10  # bad frames answered with `error` before the connection is closed
    abuse_per_second: float = 0.2  # and the allowance regained per second
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    resume_timeout: float = 30.0
    max_frame_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Command:
    """A client command to hand to another service (`destination`), on the partition of `partition_key`."""

    type: str
    partition_key: str
    payload: bytes
    client_id: str | None = None
    resume: bool = False  # the command a `resume` became: its failure ends the resume
    destination: Destination = Destination.MESSAGING


_ABUSE_CLOSE = {
    ErrorCode.RATE_LIMITED: (CloseCode.RATE_LIMITED, "too many frames: slow down before reconnecting"),
    ErrorCode.FRAME_TOO_LARGE: (CloseCode.MESSAGE_TOO_BIG, "frames over the size limit"),
}
_POLICY_CLOSE = (CloseCode.POLICY_VIOLATION, "repeated frames that break the protocol")


class Session:
    """The gateway's side of one connection: buffers, limits, keepalive and resume, as pure state."""

    def __init__(self, session_id: str, user_id: str, limits: SessionLimits, now: float) -> None:
        self.id = session_id
        self.user_id = user_id
        self.limits = limits
        self.state = SessionState.OPEN
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._answered = (0, 0)  # frames and bytes of answers in `_out`: outside the bound (see `answer`)
        self._commands: list[Command] = []
        self._close: Close | None = None
        self._rate = TokenBucket(limits.rate_per_second, limits.rate_burst, now)
        self._abuse = TokenBucket(limits.abuse_per_second, limits.abuse_burst, now)
        self._gate = ResumeGate(limits.hold_frames)
        self._ping_at = now
        self._ping_pending = False
        self._enqueue(
            hello_frame(
                session_id,
                user_id,
                ping_interval=limits.ping_interval,
                ping_timeout=limits.ping_timeout,
                max_frame_bytes=limits.max_frame_bytes,
            )
        )

    # Inputs

    def receive(self, inbound: Inbound, now: float) -> None:
        """A frame from the client, decoded by the codec."""
        if self.state is not SessionState.OPEN:
            return
        if isinstance(inbound, ClientPong) and self._ping_pending:
            self._ping_pending = False  # an awaited pong is never rate-limited
            return
        if not self._rate.take(now):
            retry = self._rate.retry_after(now)
            self._abused(Rejected(ErrorCode.RATE_LIMITED, "over the frame rate: this frame was dropped"), now, retry)
            return
        if isinstance(inbound, Forward):
            key = self.user_id if inbound.partition_key is None else inbound.partition_key
            self._commands.append(
                Command(inbound.type, key, inbound.payload, inbound.client_id, destination=inbound.destination)
            )
        elif isinstance(inbound, ClientPing):
            self._enqueue(pong_frame(inbound.id))
        elif isinstance(inbound, ResumeRequest):
            self._resume(inbound, now)
        elif isinstance(inbound, Rejected):
            self._abused(inbound, now)

    def deliver(self, frame: bytes, info: FrameInfo | None) -> None:
        """A live frame for this session's user (`info` when `needs_info`)."""
        if self.state is not SessionState.OPEN:
            return
        admission = self._gate.admit(frame, info)
        if admission is Admission.SEND:
            self._enqueue(frame)
        elif admission is Admission.OVERFLOW:
            self.close(CloseCode.RESUME_FAILED, "too many live messages while resuming: reconnect and resume")

    def answer(self, frame: bytes, info: FrameInfo | None) -> None:
        """A frame meant for this session alone (an ack, a rejection, a resume answer): never held.

        Answers are not counted against the send buffer's bound: a resume answer arrives whole (up to
        thousands of frames, bounded by messaging) and is what the client asked for; only live frames
        that pile up behind it can make the client a slow consumer.
        """
        if self.state is not SessionState.OPEN:
            return
        self._out.append(frame)
        self._out_bytes += len(frame)
        frames, size = self._answered
        self._answered = (frames + 1, size + len(frame))
        if info is not None and info.type == RESUME_DONE:
            for released in self._gate.complete(info.chats):
                self._enqueue(released)

    def command_failed(self, command: Command, reason: str) -> None:
        """`command` could not be handed to messaging: tell the client, who may send it again."""
        if self.state is not SessionState.OPEN:
            return
        if command.resume:
            self._gate.abandon()  # no answer will come: the client may resume again
        self._enqueue(error_frame(ErrorCode.UNAVAILABLE, reason, client_id=command.client_id))

    def tick(self, now: float) -> None:
        """Time passed: send a ping, or give up on a missing pong or resume answer."""
        if self.state is not SessionState.OPEN:
            return
        limits = self.limits
        if self._gate.resuming and now - self._gate.started_at >= limits.resume_timeout:
            self.close(CloseCode.RESUME_FAILED, "the resume answer did not come in time: reconnect and resume")
        elif self._ping_pending and now - self._ping_at >= limits.ping_timeout:
            self.close(CloseCode.PING_TIMEOUT, "no pong to the server's ping")
        elif not self._ping_pending and now - self._ping_at >= limits.ping_interval:
            self._enqueue(PING_FRAME)
            self._ping_pending = True
            self._ping_at = now

    def close(self, code: CloseCode, reason: str, *, flush: bool = False) -> None:
        """Decide to close; the first decision wins. Without `flush`, buffered frames are dropped."""
        if self.state is not SessionState.OPEN:
            return
        self.state = SessionState.CLOSING
        self._close = Close(code, reason, flush)
        self._gate.abandon()
        if not flush:
            self._out.clear()
            self._out_bytes = 0
            self._answered = (0, 0)

    def closed(self) -> None:
        """The socket is gone: nothing more goes in or out."""
        self.state = SessionState.CLOSED
        self._out.clear()
        self._out_bytes = 0
        self._answered = (0, 0)
        self._commands.clear()
        self._gate.abandon()

    # Outputs

    def data_to_send(self) -> list[bytes]:
        """The frames to write, in order (taken: the next call returns only newer ones)."""
        frames = list(self._out)
        self._out.clear()
        self._out_bytes = 0
        self._answered = (0, 0)
        return frames

    def commands_to_send(self) -> list[Command]:
        """The commands to hand to messaging, in order (taken)."""
        commands, self._commands = self._commands, []
        return commands

    @property
    def close_to_send(self) -> Close | None:
        """The close to write now: decided, and nothing left to flush before it."""
        if self.state is SessionState.CLOSING and not self._out:
            return self._close
        return None

    @property
    def closing(self) -> Close | None:
        """The close decided, if any (whether or not it can be written yet)."""
        return self._close

    @property
    def wants_write(self) -> bool:
        return bool(self._out) or self.close_to_send is not None

    @property
    def needs_info(self) -> bool:
        """Whether `deliver` and `answer` need the frame's `FrameInfo` (else None will do)."""
        return self._gate.needs_info

    @property
    def resuming(self) -> bool:
        return self._gate.resuming

    @property
    def buffered(self) -> int:
        return len(self._out)

    # Internals

    def _enqueue(self, frame: bytes) -> None:
        limits = self.limits
        answered_frames, answered_bytes = self._answered
        frames, size = len(self._out) - answered_frames, self._out_bytes - answered_bytes
        if frames >= limits.send_buffer_frames or size + len(frame) > limits.send_buffer_bytes:
            self.close(CloseCode.SLOW_CONSUMER, "the send buffer overflowed: reconnect and resume")
            return
        self._out.append(frame)
        self._out_bytes += len(frame)

    def _resume(self, request: ResumeRequest, now: float) -> None:
        if not self._gate.begin(now):
            self._enqueue(error_frame(ErrorCode.RESUME_IN_PROGRESS, "wait for resume.done before resuming again"))
            return
        self._commands.append(Command(request.type, self.user_id, request.payload, resume=True))

    def _abused(self, rejected: Rejected, now: float, retry_after: float | None = None) -> None:
        if self._abuse.take(now):
            self._enqueue(
                error_frame(rejected.code, rejected.reason, client_id=rejected.client_id, retry_after=retry_after)
            )
            return
        code, reason = _ABUSE_CLOSE.get(rejected.code, _POLICY_CLOSE)
        self.close(code, reason, flush=True)
