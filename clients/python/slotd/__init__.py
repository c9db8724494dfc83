"""slotd: worker and producer library for the slotd dispatcher.

    import slotd

    worker = slotd.Worker(config="/etc/slotd/slotd.yaml", id="w1", concurrency=4)

    @worker.handler
    def handle(task: slotd.Task) -> None:
        order = task.json            # the task parsed; task.data has its bytes
        ...                          # raise to retry; after max_attempts, dead letter

    worker.run()                     # until SIGTERM: finishes, gives back, leaves

    slotd.Producer(config="/etc/slotd/slotd.yaml").push({"key": "user:42", "op": "charge"})

Tasks of one routing key run one at a time, in the order they were pushed,
on one worker at a time, through joins, leaves and deaths
(docs/workers.md). Logging goes through the ``slotd`` logger.
"""
from .config import Config, ConfigError, load_config
from .deadletter import format_entry, parse_entry
from .keyslot import crc16, keyslot
from .link import Link, Lost, Refused, SlotdError, Task, fingerprint
from .producer import Producer, encode_task
from .worker import Handler, Worker, routing_key

__version__ = "0.1.0"

__all__ = [
    "Config", "ConfigError", "Handler", "Link", "Lost", "Producer", "Refused", "SlotdError", "Task",
    "Worker", "crc16", "encode_task", "fingerprint", "format_entry", "keyslot", "load_config",
    "parse_entry", "routing_key", "__version__",
]
