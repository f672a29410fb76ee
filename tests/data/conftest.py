"""Shared fixtures for the pqlr.data tests: paths of the real sample data, tiny wav writers."""
from __future__ import annotations

import functools
import http.server
import os
import threading

import numpy as np
import pytest
import soundfile as sf

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
FSDD = os.path.join(SHARED, "fsdd", "recordings")
SC_MINI = os.path.join(SHARED, "speech_commands_mini")


def write_tone(path, rate=16000, seconds=0.5, freq=440.0, channels=1):
    """Write a sine tone wav (int16) and return its samples."""
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, x, rate, subtype="PCM_16")
    return x


@pytest.fixture
def need_real_data():
    for p in (FSDD, SC_MINI):
        if not os.path.isdir(p):
            pytest.skip(f"real sample data missing: {p}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on an ephemeral port; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
