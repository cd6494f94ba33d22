"""deploy/monitoring: promtool checks the config and runs a test for every alert; a real
Prometheus (Debian package) scrapes a running bot and answers ``solbot_daily_pnl`` and every
Grafana panel query; a real Alertmanager renders our config and delivers to a local
Discord-protocol receiver."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from string import Template
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.botproc import Bot, free_port
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration
MON = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: prometheus / prometheus-alertmanager)")
    return path


def run(*cmd: str, cwd: Path = MON) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def alert_names(rules: Path) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(rules.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_config_checks_and_every_alert_has_a_passing_test() -> None:
    need("promtool")
    check = run("promtool", "check", "config", "prometheus.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    rules = alert_names(MON / "alerts.yml")
    assert {r["labels"]["severity"] for r in rules.values()} == {"P0", "P1", "P2", "P3"}
    for name in (
        "SolbotProductionDown",
        "SolbotMarketDataStale",
        "SolbotDailyLossNearLimit",
        "SolbotDailyLossLimitHit",
        "SolbotKillSwitchEngaged",
        "SolbotExchangeErrors",
        "SolbotMissedBackup",
    ):
        assert name in rules  # the list: down, stale, loss near/over, kill, errors, backup
    tests = yaml.safe_load((MON / "alerts_test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    quiet = {
        t["alertname"] for case in tests for t in case["alert_rule_test"] if not t["exp_alerts"]
    }
    assert fired == set(rules) and quiet == set(rules)  # each: fires, and not too early
    result = run("promtool", "test", "rules", "alerts_test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_the_rule_tests_fail_when_a_rule_is_wrong(tmp_path: Path) -> None:
    need("promtool")
    shutil.copy(MON / "alerts_test.yml", tmp_path)
    broken = (MON / "alerts.yml").read_text().replace("> 8 * 86400", "> 80 * 86400")
    (tmp_path / "alerts.yml").write_text(broken)
    result = run("promtool", "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "SolbotMissedBackup" in result.stdout + result.stderr


def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = pred()
            if got:
                return got
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def test_real_prometheus_scrapes_the_bot_and_answers_dashboard_queries(tmp_path: Path) -> None:
    prometheus = need("prometheus")
    (tmp_path / "bot").mkdir()
    bot = Bot(tmp_path / "bot", env={"SOLBOT_STRATEGY": "ladder"}, speed=50)
    prom_port = free_port()
    config = yaml.safe_load((MON / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{free_port()}"
    ]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "solbot")
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{bot.port}"], "labels": {"env": "production"}}
    ]
    config["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(MON / "alerts.yml", tmp_path / "alerts.yml")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1"

    def query(expr: str) -> list[dict[str, Any]]:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "prometheus.log").read_text()[-2000:])
        r = httpx.get(f"{api}/query", params={"query": expr}, timeout=5)
        body = r.json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    try:
        bot.wait_ready()
        bot.wait_until(lambda: bot.get("/api/trades").json(), 60, "a fill")
        pnl = wait_for(lambda: query("solbot_daily_pnl"), 60, "solbot_daily_pnl in Prometheus")
        assert pnl[0]["metric"]["env"] == "production"
        assert pnl[0]["metric"]["instance"] == f"127.0.0.1:{bot.port}"
        assert wait_for(lambda: query('up{job="solbot"} == 1'), 30, "target up")
        rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} == set(
            alert_names(MON / "alerts.yml")
        )
        assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules

        wait_for(lambda: query("solbot_orders_total"), 30, "orders counted")
        time.sleep(3)  # a few scrapes, so rate() has two points
        dashboard = json.loads((MON / "grafana" / "dashboards" / "solbot.json").read_text())
        empty = []
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$env", ".*")
                if not query(expr):
                    empty.append((panel["title"], expr))
        # round trips and errors need orders acknowledged / errors, paper fills are immediate
        allowed = {"Order round trip p50 / p99", "Exchange errors per minute by kind"}
        assert {t for t, _ in empty} <= allowed, empty
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        bot.kill_hard()


def test_alertmanager_config_renders_and_delivers_to_discord(tmp_path: Path) -> None:
    alertmanager = need("prometheus-alertmanager")
    amtool = need("amtool")
    with Receiver() as rx:
        text = Template((MON / "alertmanager.yml").read_text()).safe_substitute(
            SOLBOT_DISCORD_WEBHOOK_URL=rx.url
        )
        assert "${" not in text and rx.url in text
        rendered = tmp_path / "alertmanager.yml"
        rendered.write_text(text)
        check = run(amtool, "check-config", str(rendered))
        assert check.returncode == 0, check.stdout + check.stderr
        port = free_port()
        log = (tmp_path / "am.log").open("wb")
        proc = subprocess.Popen(
            [
                alertmanager,
                f"--config.file={rendered}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/api/v2/alerts"
            alert = {
                "labels": {
                    "alertname": "SolbotProductionDown",
                    "severity": "P0",
                    "env": "production",
                    "job": "solbot",
                },
                "annotations": {"summary": "Production bot down", "runbook": "solbot doctor"},
            }
            wait_for(lambda: httpx.post(url, json=[alert], timeout=5).status_code == 200, 30, "AM")
            wait_for(rx.titles, 60, "the Discord message")  # P0: group_wait 10 s
            title = rx.titles()[0]
            assert re.search(r"\[P0\] SolbotProductionDown \(production\) FIRING", title), title
            body = json.dumps(rx.messages[0])
            assert "Production bot down" in body and "solbot doctor" in body
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
