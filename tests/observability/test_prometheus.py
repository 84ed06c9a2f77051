"""The dashboards and alert rules against a real Prometheus scraping a real cadmetrics workload.

The workload is ``cadmetrics demo`` serving its metrics (the prometheus backend) while steady
requests go on; Prometheus scrapes it every second with the shipped rules loaded. Then every
dashboard query and every rule expression goes through Prometheus's HTTP API: each must parse,
each panel query must return data, every rule group must evaluate without error, and
``promtool check metrics`` must find nothing to say about the exposition.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from cadmetrics.demo import prometheus_config
from tests.conftest import REPOSITORY, server_binary, serving_demo

pytest.importorskip("prometheus_client")

DASHBOARDS = REPOSITORY / "contracts" / "dashboards"
RULES = REPOSITORY / "contracts" / "alerts" / "cadmetrics.rules.yaml"
JOB = "cadmetrics-demo"
#: What Grafana would put in place of its variables, for a scrape every second.
VARIABLES = {"$__rate_interval": "15s", "$__range": "10m", "$job": JOB}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def workload() -> Iterator[str]:
    """``cadmetrics demo`` serving its metrics; yields their URL."""
    demo, url = serving_demo(120)
    yield url
    demo.terminate()
    demo.wait(timeout=30)


@pytest.fixture(scope="module")
def prometheus(workload: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the workload every second, the shipped rules loaded; yields
    its base URL once it has scraped for a while."""
    binary = server_binary("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    target = int(urllib.parse.urlsplit(workload).port or 0)
    config.write_text(prometheus_config(target, RULES, scrape_interval="1s", job=JOB), encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(directory / "prometheus.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        scrapes = 0.0
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                found = get(
                    f"{base}/api/v1/query?query="
                    + urllib.parse.quote(f'count_over_time(up{{job="{JOB}"}}[1m])')
                )
            except OSError:
                continue
            result = found["data"]["result"]
            scrapes = float(result[0]["value"][1]) if result else 0.0
            if scrapes >= 20:  # enough samples for every rate window the panels use
                break
        assert scrapes >= 20, (directory / "prometheus.log").read_text(errors="replace")[-2000:]
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def panel_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{board['title']} / {panel['title']} / {target['refId']}", target["expr"]))
    return found


def substituted(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def query(base: str, expr: str) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = get(f"{base}/api/v1/query?query=" + urllib.parse.quote(expr))
    except urllib.error.HTTPError as error:  # a 400 carries Prometheus's own parse error
        answer = json.loads(error.read())
    return answer


def test_every_panel_query_parses_and_returns_data(prometheus: str) -> None:
    empty, failed = [], []
    for where, expr in panel_queries():
        answer = query(prometheus, substituted(expr))
        if answer["status"] != "success":
            failed.append(f"{where}: {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.append(f"{where}: {expr}")
    assert not failed, "\n".join(failed)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_the_job_variable_lists_the_workload(prometheus: str) -> None:
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        job = next(item for item in board["templating"]["list"] if item["name"] == "job")
        metric = job["definition"].removeprefix("label_values(").split(",")[0]
        values = get(f"{prometheus}/api/v1/label/job/values?match[]=" + urllib.parse.quote(metric))
        assert JOB in values["data"], board["title"]


def test_every_rule_expression_parses_and_every_group_evaluates(prometheus: str) -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        for rule in group["rules"]:
            answer = query(prometheus, rule["expr"])
            assert answer["status"] == "success", f"{rule.get('alert') or rule.get('record')}: {answer}"
    deadline = time.monotonic() + 20
    while True:
        loaded = get(f"{prometheus}/api/v1/rules")["data"]["groups"]
        evaluated = [g for g in loaded if g["lastEvaluation"] and not g["lastEvaluation"].startswith("0001")]
        if len(evaluated) == len(groups) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {g["name"] for g in loaded} == {g["name"] for g in groups}
    unhealthy = [
        (r.get("name"), r.get("lastError")) for g in loaded for r in g["rules"] if r["health"] != "ok"
    ]
    assert not unhealthy
    assert len(evaluated) == len(groups)


def test_the_workload_fires_the_alerts_it_should(prometheus: str) -> None:
    """The demo refuses a malicious model and pushes a label out of the contract: those alerts
    (which need no ``for`` period) go pending or firing on the real server."""
    wanted = {"CadmetricsModelLoadBlocked", "CadmetricsLabelOverflow", "CadmetricsModelValidationFailing"}
    deadline = time.monotonic() + 20
    active: set[str] = set()
    while time.monotonic() < deadline and not wanted <= active:
        active = {
            alert["labels"]["alertname"] for alert in get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
        }
        time.sleep(1)
    assert wanted <= active


def test_promtool_finds_nothing_to_say_about_the_exposition(workload: str) -> None:
    promtool = server_binary("promtool")
    with urllib.request.urlopen(workload, timeout=10) as response:
        exposition = response.read()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b"", checked.stdout + checked.stderr
