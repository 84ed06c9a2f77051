"""``RedisCache``: the shared (L2) feature cache in Redis, for every process and machine.

Redis may be down, slow or restarting; extraction must not wait on it for long nor fail
because of it. Every command has a short timeout and no retries (redis-py retries three
times by default, multiplying the wait), and after a failure the level stays out of the way
for ``retry_after_seconds``: calls fail at once, without touching the network, so an outage
costs one timeout per interval rather than one per request. The first call after the
interval tries again, which is how the level comes back by itself.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from typing import Any

from cadmetrics.errors import CadMetricsError, MissingDependency
from cadmetrics.telemetry.logs import component_logger, log_event

_LOG = component_logger("features")


class SharedCacheUnavailable(CadMetricsError):
    """The shared cache failed recently and is being left alone until it is tried again."""


class RedisCache:
    """Vectors in Redis under ``prefix``, each expiring after ``ttl_seconds``.

    ``url`` is a redis-py URL (``redis://host:port/db``, ``rediss://`` for TLS, ``unix://``);
    ``client`` an already configured ``redis.Redis`` instead (its own timeouts then apply).
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        client: Any = None,
        ttl_seconds: float = 7 * 24 * 3600,
        timeout_seconds: float = 0.1,
        retry_after_seconds: float = 5.0,
        prefix: str = "cadmetrics:features:",
    ) -> None:
        if ttl_seconds <= 0 or timeout_seconds <= 0 or retry_after_seconds < 0:
            raise ValueError(
                "ttl_seconds and timeout_seconds must be positive, retry_after_seconds not negative"
            )
        self._settings = (url, ttl_seconds, timeout_seconds, retry_after_seconds, prefix)
        self._own_client = client is None
        #: Where the cache is, for log lines: the URL without its credentials, or the client.
        self.address = _without_credentials(url) if client is None else f"a {type(client).__name__}"
        if client is None:
            try:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry
            except ImportError:
                raise MissingDependency(
                    "the Redis feature cache needs redis-py: pip install cadmetrics[redis]"
                ) from None
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                retry=Retry(NoBackoff(), 0),
            )
        self.client = client
        self.ttl_milliseconds = max(1, round(ttl_seconds * 1000))
        self.retry_after_seconds = retry_after_seconds
        self.prefix = prefix
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its settings, so that worker processes connect on their own."""
        if not self._own_client:
            raise TypeError("a RedisCache built on a given client cannot be sent to another process")
        url, ttl, timeout, retry_after, prefix = self._settings
        return (_rebuilt, (url, ttl, timeout, retry_after, prefix))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RedisCache):
            return NotImplemented
        return self._own_client and other._own_client and self._settings == other._settings

    def __hash__(self) -> int:
        return hash(self._settings) if self._own_client else id(self)

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self.client.get(self.prefix + key))
        return bytes(value) if value is not None else None

    def set(self, key: str, value: bytes) -> None:
        self._call(lambda: self.client.set(self.prefix + key, value, px=self.ttl_milliseconds))

    def failed_seconds_ago(self) -> float | None:
        """Seconds since the last failed call, while the cache is in its back-off; else None."""
        with self._lock:
            failed_at = self._failed_at
        return None if failed_at is None else time.monotonic() - failed_at

    def _call(self, command: Any) -> Any:
        with self._lock:
            failed_at = self._failed_at
        if failed_at is not None and time.monotonic() - failed_at < self.retry_after_seconds:
            raise SharedCacheUnavailable(
                f"Redis failed {time.monotonic() - failed_at:.1f} s ago; "
                f"next try after {self.retry_after_seconds} s"
            )
        try:
            result = command()
        except Exception as exc:
            with self._lock:
                lost = self._failed_at is None
                self._failed_at = time.monotonic()
            if lost:
                log_event(
                    _LOG,
                    logging.WARNING,
                    "shared_cache_lost",
                    f"Redis at {self.address} failed ({type(exc).__name__}); "
                    f"extraction goes on without it, next try in {self.retry_after_seconds} s",
                    address=self.address,
                    error=f"{type(exc).__name__}: {exc}",
                )
            raise
        if failed_at is not None:
            with self._lock:
                self._failed_at = None
            message = f"Redis at {self.address} answers again"
            log_event(_LOG, logging.INFO, "shared_cache_back", message, address=self.address)
        return result


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _rebuilt(url: str, ttl: float, timeout: float, retry_after: float, prefix: str) -> RedisCache:
    return RedisCache(
        url, ttl_seconds=ttl, timeout_seconds=timeout, retry_after_seconds=retry_after, prefix=prefix
    )
