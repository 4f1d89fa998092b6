"""The RabbitMQ message bus of distributed mode: the bus itself (bus.py) and its parts.

`codec` turns bus messages into AMQP messages and back, `topology` declares the exchanges and queues,
`consumer` runs one queue's consumer with the failure rules, `routes` holds delivery routes and
subscriptions, `workers` the command workers that share the partitions, `parking` the parking lot.
"""

from parlour.common.bus.amqp.bus import AmqpMessageBus

__all__ = ["AmqpMessageBus"]
