"""The lab's power switch, host side: what a node's fence agent may ask and what it is told. The relay is
served over a real Unix socket standing in for QEMU's chardev; the scenarios use it on real guests."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from reconciler_lab.fence_relay import FenceRelay

pytestmark = pytest.mark.timeout(30)


class Power:
    def __init__(self) -> None:
        self.on = {"erdbeere": True, "himbeere": True}
        self.pulled: list[str] = []

    def off(self, name: str) -> None:
        self.pulled.append(name)
        self.on[name] = False


def _relay(power: Power, path: Path) -> FenceRelay:
    return FenceRelay("erdbeere", path, power_off=power.off, is_on=lambda n: power.on[n],
                      others=frozenset({"himbeere"}))


def test_a_node_may_only_switch_the_other_node_off_and_ask_its_state(tmp_path: Path) -> None:
    power = Power()
    relay = _relay(power, tmp_path / "fence.sock")
    assert relay.answer(b'{"action": "status", "target": "himbeere"}') == {"power": "ON"}
    assert relay.answer(b'{"action": "off", "target": "himbeere"}') == {"power": "OFF"}
    assert relay.answer(b'{"action": "off", "target": "himbeere"}') == {"power": "OFF"}
    assert power.pulled == ["himbeere"]  # already off: not pulled twice
    assert relay.answer(b'{"action": "status", "target": "himbeere"}') == {"power": "OFF"}
    assert "may not switch" in relay.answer(b'{"action": "off", "target": "erdbeere"}')["error"]
    assert "unknown action" in relay.answer(b'{"action": "on", "target": "himbeere"}')["error"]
    assert "unknown action" in relay.answer(b'{"action": "reboot", "target": "himbeere"}')["error"]
    assert relay.answer(b"not json") == {"error": "bad request"}
    assert power.on["erdbeere"]


def test_the_relay_answers_over_the_socket_and_reconnects(tmp_path: Path) -> None:
    power = Power()
    path = tmp_path / "fence.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(10)
    relay = _relay(power, path)
    relay.start()
    try:
        for attempt in range(2):  # the second connection stands for QEMU after a restart
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                conn.sendall(b'{"action": "off", "target": "himbeere"}\n')
                reply = conn.makefile("rb").readline()
                assert json.loads(reply) == {"power": "OFF"}, attempt
    finally:
        relay.stop()
        server.close()
    assert power.pulled == ["himbeere"]
    assert [h["action"] for h in relay.handled] == ["off", "off"]
    assert not any(t.name == "fence-relay-erdbeere" and t.is_alive() for t in threading.enumerate())
