"""A logging.Handler that ships records to logship's HTTP events source (POST /events).

Standard library only. The application thread never blocks: ``emit`` formats the record
and puts it on a bounded queue with ``put_nowait``; when the queue is full the record is
dropped and counted (``handler.dropped``). A worker thread posts NDJSON batches with
urllib, retrying a failed batch with the same event ids (the agent turns an id into the
row id, so a retry overwrites and never duplicates), and an ``atexit`` hook flushes what
is queued, waiting at most ``exit_timeout`` seconds.

    import logging
    from logship_handler import LogshipHandler, request_id

    handler = LogshipHandler("http://127.0.0.1:9881/events", service="billing",
                             token_file="/etc/billing/logship.token")
    logging.getLogger().addHandler(handler)

    request_id.set("req-42")           # or extra={"request_id": "req-42"}
    logging.getLogger("billing").warning("card declined", extra={"order": 7})
"""

from __future__ import annotations

import atexit
import contextvars
import datetime
import json
import logging
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

__all__ = ["LogshipHandler", "request_id", "trace_id"]

#: The request id of the code running now; records logged while it is set carry it.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "logship_request_id", default=None
)
#: The trace id of the code running now.
trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "logship_trace_id", default=None
)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}

# Answers after which the same batch is sent again; any other 4xx drops it (resending a
# bad request cannot help).
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def _level(levelno: int) -> str:
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _LEVELS[threshold]
    return "debug"


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


class LogshipHandler(logging.Handler):
    """Ships records to ``url`` in NDJSON batches from a worker thread.

    Counters, safe to read at any time: ``dropped`` (queue full or handler closed),
    ``sent`` (events the agent answered 2xx for), ``failed`` (events given up on after
    ``max_retries`` or refused with a 4xx other than 408/429).
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:9881/events",
        service: str | None = None,
        *,
        token: str | None = None,
        token_file: str | None = None,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        max_retries: int = 8,
        exit_timeout: float = 5.0,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.url = url
        self.service = service or (sys.argv[0].rsplit("/", 1)[-1] or "python")
        if token_file is not None:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        self._token = token
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_retries = max_retries
        self.exit_timeout = exit_timeout
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize=max(1, capacity))
        self._closed = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._deadline = float("inf")
        self._worker = threading.Thread(
            target=self._run, name="logship-handler", daemon=True
        )
        self._worker.start()
        atexit.register(self.close)

    # -- the application's side: never blocks -------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = self._event(record)
        except Exception:  # a record that cannot be formatted must not break the caller
            self.handleError(record)
            return
        if self._closed.is_set():
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _event(self, record: logging.LogRecord) -> dict:
        message = record.getMessage()
        if record.exc_info:
            message = message + "\n" + self.formatException(record.exc_info)
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        event = {
            "id": str(uuid.uuid4()),
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "service": self.service,
            "level": _level(record.levelno),
            "message": message,
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "thread": record.threadName,
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        tid = getattr(record, "trace_id", None) or trace_id.get()
        if rid is not None:
            event["request_id"] = str(rid)
        if tid is not None:
            event["trace_id"] = str(tid)
        for key, value in vars(record).items():
            if key in _STANDARD or key in ("request_id", "trace_id") or key in event:
                continue
            event[key] = _jsonable(value)
        return event

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                if self._closed.is_set():
                    return
                continue
            batch = [] if first is None else [first]
            stop = first is None
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            with self._idle:
                self._in_flight = len(batch)
            try:
                if batch:
                    self._post(batch)
            finally:
                with self._idle:
                    self._in_flight = 0
                    self._idle.notify_all()
            if stop:
                return

    def _post(self, batch: list[dict]) -> None:
        body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in batch)
        data = body.encode("utf-8")
        headers = {"Content-Type": "application/x-ndjson"}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        delay = 0.2
        for attempt in range(self.max_retries + 1):
            wait = delay
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read()
                self.sent += len(batch)
                return
            except urllib.error.HTTPError as e:
                if e.code not in _RETRY_STATUS:
                    self.failed += len(batch)
                    sys.stderr.write(
                        f"logship handler: {len(batch)} events refused ({e.code}): "
                        f"{e.read()[:500]!r}\n"
                    )
                    return
                after = e.headers.get("Retry-After")
                if after and after.isdigit():
                    wait = max(wait, float(after))
            except (urllib.error.URLError, OSError):
                pass  # the agent is restarting or unreachable: the same batch again
            if attempt == self.max_retries:
                break
            # Stop retrying at exit once the exit budget is spent.
            if self._closed.is_set() and time.monotonic() > self._deadline:
                break
            time.sleep(wait)
            delay = min(delay * 2, 10.0)
        self.failed += len(batch)

    # -- flushing and closing -----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far was posted; False if ``timeout`` passed."""
        deadline = time.monotonic() + (self.exit_timeout if timeout is None else timeout)
        with self._idle:
            while self._queue.qsize() > 0 or self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._worker.is_alive():
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Posts what is queued (waiting at most ``exit_timeout``), then stops the worker."""
        if self._closed.is_set():
            return
        self._deadline = time.monotonic() + self.exit_timeout
        self.flush(self.exit_timeout)
        self._closed.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._worker.join(max(0.0, self._deadline - time.monotonic()))
        left = self._queue.qsize()
        if left:
            self.dropped += left
            sys.stderr.write(f"logship handler: {left} events not sent at exit\n")
        super().close()
