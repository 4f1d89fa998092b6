"""The `Dispatcher` of the channels and the delivery worker (docs/subsystems/notifications-channels.md).

`ChannelDispatcher.dispatch` writes one delivery per channel of each notification's user and wakes the
worker; that is all it waits for. `DeliveryWorker.run` takes due deliveries (leased, so several processes
share the queue) with their channels (one lookup per take), makes one attempt each, and by the outcome
marks them done, drops them (the channel is gone), schedules a retry (backoff with jitter, at least
`Retry-After`), or parks them on the bus with the reason. The successes, the common case, are written
as a group commit: those that end while one write runs are written together by the next, in one
transaction for the deliveries and one for the webhooks' last status, whatever their number.
`ParkedDeliveries` is the parking lot's consumer: the first time it sees a delivery it refuses it for
good (the bus parks it); a replay of that message makes the delivery pending again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import structlog

from parlour.common.bus.port import MalformedMessage
from parlour.common.clock import Clock
from parlour.notifications.application.channel_ports import (
    ChannelStore,
    DeliveryQueue,
    Parking,
    PushSender,
    WebhookSender,
)
from parlour.notifications.application.ports import Dispatcher
from parlour.notifications.domain.channels import Attempt, Delivery, DeliveryKey, PushSubscription, Webhook
from parlour.notifications.domain.delivery import ChannelKind, DeliveryState, Outcome, RetrySchedule, classify
from parlour.notifications.domain.model import Notification

log = structlog.get_logger(__name__)


def encode(notification: Notification) -> bytes:
    """A notification as a delivery's payload (JSON)."""
    return msgspec.json.encode(notification)


def decode(payload: bytes) -> Notification:
    """The notification a delivery's payload holds."""
    return msgspec.json.decode(payload, type=Notification)


class DeliveryParked(MalformedMessage):
    """Raised by the parking lot's consumer so that the bus parks the message at once, with this reason."""

    code = "notification_delivery_parked"
    default_message = "A notification could not be delivered: it was parked."


class ChannelDispatcher(Dispatcher):
    """Records the deliveries of due notifications, then wakes the worker."""

    def __init__(self, channels: ChannelStore, queue: DeliveryQueue, clock: Clock, wake: Callable[[], None]) -> None:
        self._channels = channels
        self._queue = queue
        self._clock = clock
        self._wake = wake

    async def dispatch(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        channels = await self._channels.channels_of({n.user_id for n in notifications})
        now = self._clock.utcnow()
        deliveries = [
            Delivery(DeliveryKey(n.id, kind, channel_id), n.user_id, encode(n), 0, now, DeliveryState.PENDING)
            for n in notifications
            for kind, channel_id in channels.get(n.user_id, [])
        ]
        if deliveries and await self._queue.add(deliveries):
            self._wake()


# A delivery's channel, looked up when it is taken.
Channel = PushSubscription | Webhook
# Successes written by one statement of the group commit at most.
_SUCCESS_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Success:
    key: DeliveryKey
    attempts: int
    webhook: tuple[str, int, datetime] | None  # its id, the status and when, to record on the webhook
    written: asyncio.Future[None]


class DeliveryWorker:
    """Delivers what is due, one attempt per delivery per turn, up to `concurrency` attempts at a time.

    A pipeline, not batches: whenever an attempt ends, its slot takes the next due delivery, so one receiver
    that answers only at the timeout holds back one slot, not the deliveries taken with it."""

    def __init__(
        self,
        queue: DeliveryQueue,
        channels: ChannelStore,
        push: PushSender,
        webhooks: WebhookSender,
        parking: Parking,
        clock: Clock,
        *,
        schedule: RetrySchedule,
        disable_after: float,
        concurrency: int = 64,
        poll: float = 1.0,
        lease: float = 35.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._queue = queue
        self._channels = channels
        self._push = push
        self._webhooks = webhooks
        self._parking = parking
        self._clock = clock
        self._schedule = schedule
        self._disable_after = disable_after
        self._concurrency = concurrency
        self._poll = poll
        self._lease = lease
        self._jitter = jitter
        self._woken = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        # Successes waiting for the group commit (`_write_successes`): at most one per attempt under way.
        self._succeeded: list[_Success] = []
        self._success_waiting = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._woken.set()

    async def run(self) -> None:
        """Deliver until cancelled (then the attempts under way are cancelled too: their leases lapse and
        another turn makes them again); a failed take (the database away) is logged and tried again."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._write_successes(), name="notifications.delivered")
            await self._deliver_due()

    async def _deliver_due(self) -> None:
        try:
            while True:
                free = self._concurrency - len(self._running)
                if free <= 0:
                    await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not await self._start_due(free):
                    await self._idle()
        finally:
            running = list(self._running)
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    async def _start_due(self, free: int) -> int:
        self._woken.clear()
        now = self._clock.utcnow()
        try:
            due = await self._queue.take_due(now, free, now + timedelta(seconds=self._lease))
            channels = await self._channels_of(due)
        except Exception as error:  # what was taken stays leased, and is taken again when the lease lapses
            log.warning("notifications.delivery_take_failed", error=f"{type(error).__name__}: {error}")
            return 0
        for delivery in due:
            channel = channels.get((delivery.key.kind, delivery.key.channel_id))
            task = asyncio.create_task(self._guarded(delivery, channel), name="notifications.attempt")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(due)

    async def _channels_of(self, due: Sequence[Delivery]) -> Mapping[tuple[ChannelKind, str], Channel]:
        wanted: dict[ChannelKind, set[str]] = {kind: set() for kind in ChannelKind}
        for delivery in due:
            if delivery.state is not DeliveryState.PARKING:  # a parking one is not sent, only parked
                wanted[delivery.key.kind].add(delivery.key.channel_id)
        found: dict[tuple[ChannelKind, str], Channel] = {}
        if push := wanted[ChannelKind.PUSH]:
            subscriptions = await self._channels.subscriptions_by_id(push)
            found.update(((ChannelKind.PUSH, i), subscription) for i, subscription in subscriptions.items())
        if hooks := wanted[ChannelKind.WEBHOOK]:
            hooked = await self._channels.webhooks_by_id(hooks)
            found.update(((ChannelKind.WEBHOOK, i), webhook) for i, webhook in hooked.items())
        return found

    async def _idle(self) -> None:
        timeout = self._poll
        try:
            next_due = await self._queue.next_due()
        except Exception:
            next_due = None
        if next_due is not None:
            timeout = min(self._poll, max(0.0, (next_due - self._clock.utcnow()).total_seconds()))
        if timeout > 0 and not self._woken.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._woken.wait()
            except TimeoutError:
                pass

    async def _guarded(self, delivery: Delivery, channel: Channel | None) -> None:
        try:
            await self.deliver(delivery, channel)
        except Exception as error:  # the lease lapses and another turn tries again
            log.warning(
                "notifications.delivery_failed",
                notification_id=delivery.key.notification_id,
                kind=delivery.key.kind.value,
                error=f"{type(error).__name__}: {error}",
            )

    async def deliver(self, delivery: Delivery, channel: Channel | None) -> None:
        """One attempt at `delivery` through `channel` (as it was when the delivery was taken; None: it is
        gone), and what follows from its outcome."""
        key = delivery.key
        if delivery.state is DeliveryState.PARKING:  # given up before, not yet in the parking lot
            await self._park(delivery, delivery.attempts, delivery.last_error or "given up")
            return
        notification = decode(delivery.payload)
        if key.kind is ChannelKind.PUSH:
            subscription = channel if isinstance(channel, PushSubscription) else None
            if subscription is None or subscription.user_id != delivery.user_id:
                # Removed, or re-owned: the browser subscribed again under another user, who must not get this.
                reason = "the subscription was removed" if subscription is None else "the subscription changed owner"
                await self._queue.finish(key, DeliveryState.DROPPED, delivery.attempts, reason)
                return
            attempt = await self._push.send(subscription, notification)
            await self._settle(delivery, attempt, classify(key.kind, attempt.status), disabled=False)
            return
        webhook = channel if isinstance(channel, Webhook) else None
        if webhook is None or not webhook.enabled:
            reason = (
                "the webhook was deleted" if webhook is None else f"the webhook is disabled: {webhook.disabled_reason}"
            )
            await self._queue.finish(key, DeliveryState.DROPPED, delivery.attempts, reason)
            return
        attempt = await self._webhooks.send(webhook, notification)
        outcome = classify(key.kind, attempt.status)
        if outcome is Outcome.DELIVERED and not attempt.refused and attempt.status is not None:
            await self._succeeded_with(delivery, (webhook.id, attempt.status, self._clock.utcnow()))
            return
        disabled = await self._account(webhook, attempt, outcome)
        await self._settle(delivery, attempt, outcome, disabled=disabled)

    async def _succeeded_with(self, delivery: Delivery, webhook: tuple[str, int, datetime] | None) -> None:
        """Hand a success to the group commit; return once it is written (or the write failed: logged, and
        the lease lapses, so it is attempted again with the same id: at least once)."""
        written = asyncio.get_running_loop().create_future()
        self._succeeded.append(_Success(delivery.key, delivery.attempts + 1, webhook, written))
        self._success_waiting.set()
        await written

    async def _write_successes(self) -> None:
        """The group commit of successes, until cancelled."""
        try:
            while True:
                await self._success_waiting.wait()
                self._success_waiting.clear()
                while self._succeeded:
                    batch = self._succeeded[:_SUCCESS_BATCH]
                    del self._succeeded[:_SUCCESS_BATCH]
                    await self._write(batch)
        finally:
            for success in self._succeeded:
                success.written.cancel()
            self._succeeded.clear()

    async def _write(self, batch: list[_Success]) -> None:
        try:
            await self._queue.finish_done([(s.key, s.attempts) for s in batch])
            await self._channels.record_webhook_deliveries([s.webhook for s in batch if s.webhook is not None])
        except Exception as error:
            log.warning(
                "notifications.delivery_write_failed", deliveries=len(batch), error=f"{type(error).__name__}: {error}"
            )
        for success in batch:
            if not success.written.done():  # else its attempt was cancelled meanwhile
                success.written.set_result(None)

    async def _settle(self, delivery: Delivery, attempt: Attempt, outcome: Outcome, *, disabled: bool) -> None:
        key, attempts, error = delivery.key, delivery.attempts + 1, attempt.describe()
        if attempt.refused:
            outcome = Outcome.FAILED
        if outcome is Outcome.DELIVERED:
            await self._succeeded_with(delivery, None)
        elif outcome is Outcome.GONE:
            await self._channels.remove_subscription(key.channel_id)
            await self._queue.finish(key, DeliveryState.DROPPED, attempts, f"the push service said {error}: removed")
            log.info("notifications.subscription_gone", subscription_id=key.channel_id, status=attempt.status)
        elif outcome is Outcome.RETRY and not disabled and not self._schedule.gives_up(attempts):
            wait = self._schedule.delay(attempts, self._jitter(), attempt.retry_after)
            await self._queue.retry(key, attempts, self._clock.utcnow() + timedelta(seconds=wait), error)
            if wait < self._poll:
                self.wake()  # the idle loop may be sleeping past this retry's time
            log.info("notifications.delivery_retry", kind=key.kind.value, attempts=attempts, wait=wait, error=error)
        else:
            reason = f"{key.kind.value} {key.channel_id}: {error} after {attempts} attempt(s)"
            await self._park(delivery, attempts, reason)

    async def _account(self, webhook: Webhook, attempt: Attempt, outcome: Outcome) -> bool:
        """Record the attempt on the webhook; disable it when it has failed for `disable_after`. Whether it was."""
        now = self._clock.utcnow()
        if outcome is Outcome.DELIVERED:
            await self._channels.record_webhook_attempt(webhook.id, attempt.status, now, None)
            return False
        since = webhook.failing_since or now
        await self._channels.record_webhook_attempt(webhook.id, attempt.status, now, since)
        if (now - since).total_seconds() < self._disable_after:
            return False
        failed_for = _duration(self._disable_after)
        reason = (
            f"Every delivery failed for {failed_for} (last: {attempt.describe()}). Add the webhook again to resume."
        )
        await self._channels.disable_webhook(webhook.id, reason)
        log.warning("notifications.webhook_disabled", webhook_id=webhook.id, user_id=webhook.user_id, reason=reason)
        return True

    async def _park(self, delivery: Delivery, attempts: int, reason: str) -> None:
        lease_until = self._clock.utcnow() + timedelta(seconds=self._lease)
        await self._queue.start_parking(delivery.key, attempts, reason, lease_until)
        await self._parking.park(delivery, attempts, reason)
        log.warning("notifications.delivery_parked", notification_id=delivery.key.notification_id, reason=reason)


class ParkedDeliveries:
    """The parking lot's consumer: refuses a delivery given up (so the bus parks it), revives a replayed one."""

    def __init__(self, queue: DeliveryQueue, clock: Clock, wake: Callable[[], None]) -> None:
        self._queue = queue
        self._clock = clock
        self._wake = wake

    async def arrived(self, key: DeliveryKey, reason: str) -> None:
        """Raise `DeliveryParked` for a delivery on its way to the parking lot; a replay of a parked one makes
        it pending again (with its attempts counted afresh); anything else (a stale copy) is dropped."""
        if await self._queue.set_state(key, DeliveryState.PARKED, only_from=DeliveryState.PARKING):
            raise DeliveryParked(reason)
        if await self._queue.revive(key, self._clock.utcnow()):
            log.info("notifications.delivery_replayed", notification_id=key.notification_id, kind=key.kind.value)
            self._wake()


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
