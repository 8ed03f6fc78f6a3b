"""Every SQL statement Bulkhead runs, grouped by concern, as templates rendered once per schema.

A template names its tables as `{schema}.table`; `{schema}` becomes the tenant schema's quoted
identifier, `{role}` its tenant role's, `{vector_schema}` pgvector's schema and `{embedding_dim}`
an integer, all validated before they get here. Every value is a parameter: `$n` in most
statements, `:name` in recall's search (bound by name, see `NamedStatement`). Nothing outside
this package holds SQL.

    catalog     server-wide look-ups and the shared vector extension (not per schema)
    roles       tenant roles: creating, granting, handing schemas and tables to them
    migrations  the migrations table of each schema
    memories    banks, documents and memories: retain, forget, list_banks
    search      recall's candidates
    vectors     a schema's embedding column: its dimension and reembed
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self, overload

from mcp_server.tenancy import EXTENSION_SCHEMA, tenant_role_name, validate_schema_name

__all__ = [
    "EXTENSION_SCHEMA",
    "NamedStatement",
    "SchemaNames",
    "StatementGroup",
    "Template",
    "quote_identifier",
    "render",
]


def quote_identifier(name: str) -> str:
    """Double-quote a PostgreSQL identifier, doubling any quote inside it."""
    return '"' + name.replace('"', '""') + '"'


def render(template: str, **identifiers: str | int) -> str:
    """Fill `{name}` placeholders with identifiers already quoted (or integers) by the caller.

    Only the names given are replaced, so literal braces elsewhere (`'{}'`) are left alone.
    """
    names = "|".join(re.escape(name) for name in identifiers)
    return re.sub(r"\{(" + names + r")\}", lambda m: str(identifiers[m.group(1)]), template)


@dataclass(frozen=True, slots=True)
class SchemaNames:
    """The identifiers a schema's statements are rendered with, validated and quoted."""

    schema: str
    vector_schema: str = EXTENSION_SCHEMA
    embedding_dim: int = 0

    def render(self, template: str) -> str:
        """`template` with this schema's identifiers filled in."""
        return render(
            template,
            schema=quote_identifier(validate_schema_name(self.schema)),
            role=quote_identifier(tenant_role_name(self.schema)),
            vector_schema=quote_identifier(self.vector_schema),
            embedding_dim=int(self.embedding_dim),
        )


class Template:
    """One statement of a `StatementGroup`: the template on the class, rendered text on an instance."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, group: None, owner: type) -> Template: ...
    @overload
    def __get__(self, group: StatementGroup, owner: type) -> str: ...
    def __get__(self, group: StatementGroup | None, owner: type) -> Template | str:
        if group is None:
            return self
        return group.rendered[self.name]


class StatementGroup:
    """The statements of one concern, rendered for one schema when the group is made."""

    templates: ClassVar[dict[str, Template]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.templates = {
            name: value
            for klass in reversed(cls.__mro__)
            for name, value in vars(klass).items()
            if isinstance(value, Template)
        }

    def __init__(self, names: SchemaNames) -> None:
        self.names = names
        self.rendered = {name: names.render(template.text) for name, template in self.templates.items()}

    @classmethod
    def for_schema(cls, schema: str, *, vector_schema: str = EXTENSION_SCHEMA, embedding_dim: int = 0) -> Self:
        """The group rendered for `schema` (see `SchemaNames` for the other identifiers)."""
        return cls(SchemaNames(schema, vector_schema=vector_schema, embedding_dim=embedding_dim))

    def statements(self) -> dict[str, str]:
        """Every rendered statement of the group, by name."""
        return dict(self.rendered)


NAMED_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class NamedStatement:
    """A statement whose parameters are written `:name`, bound from a mapping by name.

    asyncpg takes `$n` parameters only; this turns each distinct name into one `$n` once, so a
    caller never lines values up by position. A `::type` cast is not a parameter.
    """

    def __init__(self, text: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.text = NAMED_PARAMETER.sub(number, text)

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        """The values in parameter order; raises `KeyError` naming a parameter left unset."""
        return [values[name] for name in self.names]
