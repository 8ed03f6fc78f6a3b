"""Helpers for the MCP Inspector's CLI (npm): running it, reading its output, and the preload that
gives its HTTP requests a bearer header (`inspector_bearer.cjs`, next to this file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import REPO

INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"
BEARER_PRELOAD = Path(__file__).with_name("inspector_bearer.cjs")
BULKHEAD = str(Path(sys.executable).with_name("bulkhead"))


def inspector(env: dict[str, str], target: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `npx -y @modelcontextprotocol/inspector@0.15.0 --cli TARGET ARGS`."""
    env = {**env, "npm_config_update_notifier": "false", "npm_config_prefer_offline": "true"}
    return subprocess.run(
        ["npx", "-y", INSPECTOR, "--cli", *target, *args],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def output(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON the Inspector printed for a successful call."""
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)
