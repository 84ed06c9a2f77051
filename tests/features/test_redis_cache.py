"""The Redis level against a real redis-server: shared across processes, expiring, and
absorbed when Redis is down or slow, then back by itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cadmetrics import Telemetry
from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.features.redis_cache import RedisCache, SharedCacheUnavailable
from tests.conftest import REPOSITORY, server_binary
from tests.features.shapes import box, cylinder

redis = pytest.importorskip("redis")


class RedisServer:
    """A redis-server of our own on a free port, in a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.binary = server_binary("redis-server")
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--enable-debug-command",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        for _ in range(200):
            try:
                if client.ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_vectors_are_shared_between_processes(
    redis_server: RedisServer, telemetry: Telemetry, metrics: Any
) -> None:
    child = textwrap.dedent(
        f"""
        from cadmetrics.features.cache import FeatureCache
        from cadmetrics.features.extractor import FeatureExtractor
        from cadmetrics.features.redis_cache import RedisCache
        from tests.features.shapes import cylinder
        extractor = FeatureExtractor("v4", cache=FeatureCache(l2=RedisCache({redis_server.url!r})))
        assert not extractor.extract(cylinder()).cached
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True, cwd=REPOSITORY)
    extractor = FeatureExtractor(
        "v4", cache=FeatureCache(l2=RedisCache(redis_server.url)), telemetry=telemetry
    )
    vector = extractor.extract(cylinder())
    assert vector.cached
    assert metrics.value("cadmetrics_feature_cache_hits_total", level="l2") == 1
    assert metrics.value("cadmetrics_feature_extractions_total", result="computed") == 0


def test_entries_expire(redis_server: RedisServer) -> None:
    level = RedisCache(redis_server.url, ttl_seconds=60)
    FeatureExtractor("v1", cache=FeatureCache(l2=level)).extract(box())
    (key,) = level.client.keys("cadmetrics:features:*")
    assert 0 < level.client.pttl(key) <= 60_000


def test_redis_down_then_back(redis_server: RedisServer, telemetry: Telemetry, metrics: Any) -> None:
    level = RedisCache(redis_server.url, retry_after_seconds=0.0)
    extractor = FeatureExtractor("v2", cache=FeatureCache(l1=None, l2=level), telemetry=telemetry)
    extractor.extract(box())
    redis_server.stop()
    vector = extractor.extract(box())  # computed again, no exception
    assert not vector.cached
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="get") == 1
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="set") == 1
    redis_server.start()  # an empty Redis on the same port
    extractor.extract(box())  # fills it again
    assert extractor.extract(box()).cached
    assert metrics.value("cadmetrics_feature_cache_hits_total", level="l2") == 1


def test_a_failed_level_is_left_alone_until_its_retry_time(redis_server: RedisServer) -> None:
    level = RedisCache(redis_server.url, retry_after_seconds=3600)
    redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        level.get("k")
    with pytest.raises(SharedCacheUnavailable, match="next try after 3600"):
        level.get("k")  # fails at once, without the network


def test_a_slow_redis_is_a_counted_failure(
    redis_server: RedisServer, telemetry: Telemetry, metrics: Any
) -> None:
    level = RedisCache(redis_server.url, timeout_seconds=0.2, retry_after_seconds=3600)
    extractor = FeatureExtractor("v1", cache=FeatureCache(l1=None, l2=level), telemetry=telemetry)
    blocker = redis.Redis.from_url(redis_server.url)
    sleeping = threading.Thread(target=lambda: blocker.execute_command("DEBUG", "SLEEP", "3"))
    sleeping.start()
    _wait_until_unresponsive(redis_server.url)
    try:
        assert not extractor.extract(cylinder()).cached
        assert not extractor.extract(cylinder()).cached
    finally:
        sleeping.join()
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="get") == 2
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="set") == 2


def _wait_until_unresponsive(url: str) -> None:
    """Until the server, busy with DEBUG SLEEP, stops answering a quick PING."""
    probe = redis.Redis.from_url(url, socket_timeout=0.05)
    for _ in range(100):
        try:
            probe.ping()
        except redis.exceptions.TimeoutError:
            return
    raise RuntimeError("the server never became unresponsive")


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RedisCache(ttl_seconds=0)
