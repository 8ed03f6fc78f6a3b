"""The README's opening: install, `bulkhead smoke`, then a host configuration that works as written."""

from __future__ import annotations

import json
import re

from helpers import REPO

README = (REPO / "README.md").read_text()
START = README[README.index("## Start here") : README.index("## Developing")]


def test_the_readme_opens_with_install_then_smoke() -> None:
    assert README.index("## Start here") < README.index("## What it does")
    [first] = re.findall(r"```sh\n(.*?)```", START, re.DOTALL)[:1]
    lines = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    assert lines == ["python3 -m venv .venv && . .venv/bin/activate", "pip install .", "bulkhead smoke"]
    assert "bulkhead serve" not in first


def test_the_host_configuration_uses_an_absolute_path_and_says_how_to_find_it() -> None:
    assert "command -v bulkhead" in START
    configs = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", START, re.DOTALL)]
    [server] = configs[0]["mcpServers"].values()
    assert server["command"].startswith("/") and server["command"].endswith("/bin/bulkhead")
    assert server["args"] == ["serve"]


def test_the_readme_says_how_to_put_bulkhead_on_every_hosts_path_and_add_it_in_one_line() -> None:
    assert "pipx install ." in START and "uv tool install ." in START
    assert 'claude mcp add --scope user memory -- "$(command -v bulkhead)" serve' in START
    vscode = re.search(r"code --add-mcp \"(.*?)\"`", START)
    assert vscode is not None
    entry = json.loads(vscode.group(1).replace('\\"', '"').replace("$(command -v bulkhead)", "/bin/bulkhead"))
    assert entry == {"name": "memory", "command": "/bin/bulkhead", "args": ["serve"]}
    assert "~/.cursor/mcp.json" in START and ".vscode/mcp.json" in START
