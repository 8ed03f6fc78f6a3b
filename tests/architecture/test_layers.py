"""The layers of DESIGN.md, enforced: imports point down only, and the driver and the MCP SDK
stay in the layers that own them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "mcp_server"

# Higher layers may import lower ones, never the reverse. Modules of one layer may import each other.
LAYERS = {
    "cli": 9,
    "server": 8,
    # Beside the MCP surface, not inside it: the HTTP server mounts the dashboard, and the
    # dashboard never imports the server (nor, being below it, the MCP SDK).
    "web": 7.5,
    "runtime": 7,
    "memory": 6,
    "llm": 5,
    "store": 4,
    "db": 3,
    "embedding": 2,
    "tenancy": 1,
    "config": 0.5,
    "errors": 0,
}
# Third-party packages only some layers may import.
OWNED = {"asyncpg": {"store", "db"}, "pgvector": {"store"}, "mcp": {"server"}, "mcp_types": {"server"}}


# Top-level modules that belong to a layer of another name.
PART_OF = {"__main__": "cli", "progress": "cli"}


def layer_of(module: str) -> str:
    """`mcp_server.store.sql.search` -> `store`, `mcp_server.progress` -> `cli`."""
    name = module.split(".")[1]
    return PART_OF.get(name, name)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_imports_point_down_only() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module == "mcp_server":
            continue
        own = layer_of(module)
        assert own in LAYERS, f"{module} is in no layer"
        for imported in imports_of(path):
            root = imported.split(".")[0]
            if root == "mcp_server" and imported != "mcp_server":
                other = layer_of(imported)
                if other != own and LAYERS[other] >= LAYERS[own]:
                    wrong.append(f"{module} imports {imported}")
            elif root in OWNED and own not in OWNED[root]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_database_commands_load_no_mcp() -> None:
    """migrate, reembed and the benches reach a pool without loading the MCP SDK."""
    probe = (
        "import sys; import mcp_server.cli, mcp_server.runtime, mcp_server.memory.reembed; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types')); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sql_lives_in_the_sql_package() -> None:
    """Statements are written in `store/sql` only: no other string literal starts like one
    (in upper case, as every statement here is written).

    (Messages may quote a statement for an operator to run, mid-sentence.)"""
    keywords = ("SELECT ", "INSERT ", "DELETE ", "UPDATE ", "CREATE ", "ALTER ", "GRANT ", "WITH ", "SET ", "DROP ")
    stray: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sql" in path.relative_to(PACKAGE).parts[:2]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.lstrip().startswith(keywords)
            ):
                stray.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert stray == []
