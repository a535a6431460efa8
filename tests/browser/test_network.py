"""The browser tests' private network: the node and the browsers share a
network namespace with only loopback (when the tests run as root)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import UI, Node

GATHER = """async () => {
  await navigator.mediaDevices.getUserMedia({ audio: true });  // real addresses, not mDNS names
  const pc = new RTCPeerConnection();
  pc.createDataChannel('probe');
  const found = [];
  pc.addEventListener('icecandidate', (e) => e.candidate && e.candidate.address && found.push(e.candidate.address));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 10000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
  pc.close();
  return found;
}"""


@pytest.mark.timeout(120)
def test_node_and_browsers_see_only_loopback(ui: UI, node: Node) -> None:
    if node.netns_pid is None:
        pytest.skip("no private network namespace (tests not run as root, or namespaces not allowed): the host's network is used")
    assert os.stat(f"/proc/{node.netns_pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    # From the host's namespace the node's port is not there.
    port = urlsplit(node.url).port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    page = ui.page("network")
    page.goto(node.url + "/")
    assert set(page.evaluate(GATHER)) == {"127.0.0.1"}
    ui.assert_clean()
