"""The numbered SQL migrations in `schema/`, read from the installed package or the source tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mcp_server.errors import Misconfigured

MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
REQUIRES = re.compile(r"^--\s*requires:\s*([a-z_, ]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    """One migration file. `requires` names extensions it needs (it waits until they exist)."""

    version: int
    name: str
    template: str
    requires: frozenset[str]


def schema_dir() -> Path:
    """Where the migration files are: inside the wheel, or `schema/` beside the package."""
    packaged = Path(__file__).resolve().parent.parent / "schema"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "schema"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every migration, in version order; raises if two share a version."""
    found: dict[int, Migration] = {}
    for path in sorted((directory or schema_dir()).glob("*.sql")):
        match = MIGRATION_NAME.fullmatch(path.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise Misconfigured(f"two migrations share version {version}: {found[version].name}, {path.name}")
        template = path.read_text(encoding="utf-8")
        requires = frozenset(
            name.strip() for line in REQUIRES.findall(template) for name in line.split(",") if name.strip()
        )
        found[version] = Migration(version=version, name=path.stem, template=template, requires=requires)
    if not found:
        raise Misconfigured("no migrations found; the installation is incomplete")
    return [found[v] for v in sorted(found)]
