"""A real Prometheus server for tests: started on loopback with a generated config, stopped after."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT

RULES = PROJECT_ROOT / "exporters" / "prometheus" / "reconciler-alerts.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shortened_rules(target: Path, hold: str = "2s") -> Path:
    """A copy of the shipped rules whose every ``for:`` is ``hold``, so a test sees pending and firing
    within seconds; the shipped file keeps its real durations."""
    text = re.sub(r"^(\s+for:) \S+$", rf"\1 {hold}", RULES.read_text(), flags=re.MULTILINE)
    target.write_text(text)
    return target


class Prometheus:
    def __init__(self, workdir: Path, scrape_ports: list[int], rules: Path) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None
        self.port = free_port()
        config = workdir / "prometheus.yml"
        # JSON is YAML; Prometheus reads it as such.
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "reconciler",
                                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in scrape_ports]}]}],
        }))
        self.log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def api(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode} while waiting for {what}")
            try:
                last = check()
            except (urllib.error.URLError, ConnectionError):
                last = None
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last answer: {last!r}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def targets_up(self) -> bool:
        targets = self.api("targets")["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
