"""The layers hold: a signaling node loads no media code, and the contracts
in setup.cfg (import-linter) are kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEDIA_STACK = ("aiortc", "aioice", "av", "cv2", "vosk", "webrtcvad", "media")


def loaded_after(statement: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_a_signaling_node_loads_no_media_code() -> None:
    loaded = loaded_after("import signaling.app")
    assert "signaling" in loaded and "telemed" in loaded  # the import did happen
    assert loaded.isdisjoint(MEDIA_STACK), sorted(loaded & set(MEDIA_STACK))


def test_the_media_worker_does_load_it() -> None:
    """The check above can fail: the worker's import does bring the stack in."""
    assert {"aiortc", "av", "media"} <= loaded_after("import media.worker")


def test_the_import_contracts_are_kept() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
