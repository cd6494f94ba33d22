"""``docs/strategies.md`` cannot rot: its ``bash`` blocks run, in order, in one shell in an
empty folder, as a new user would type them (``solbot`` on the PATH, ``DATA`` a real data
file). A block that fails fails the test with its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_file

pytestmark = pytest.mark.integration
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def test_the_guides_commands_work_from_an_empty_folder(tmp_path: Path) -> None:
    data = shared_file("SOL_USDT-1h.json")
    blocks = bash_blocks(GUIDE.read_text())
    assert len(blocks) >= 6, "the guide lost its commands"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {
        **os.environ,
        "DATA": str(data),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "120",
    }
    r = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert (tmp_path / "mystrat.py").is_file()
    assert (tmp_path / "runs" / "mystrat-wf" / "walk_forward.json").is_file()
    assert "no look-ahead" in r.stdout
