"""How a subcommand is declared (its help in one shape) and what every command loads first."""

from __future__ import annotations

import argparse
import textwrap

from mcp_server.cli.logs import configure_logging
from mcp_server.config import Settings, load_settings
from mcp_server.tenancy import TenantDirectory

HELP_WIDTH = 88


def subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, details: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose help says what it does in a sentence, then more, then examples."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(f"{summary[0].upper()}{summary[1:]}. {details}", HELP_WIDTH),
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def load_configuration() -> tuple[Settings, TenantDirectory]:
    """The settings from the environment and `.env`, and the tenants they name; from here on the
    process logs at the configured level (nothing is logged before a failure to load is raised)."""
    settings = load_settings()
    directory = TenantDirectory.from_settings(settings)
    configure_logging(settings.log_level)
    return settings, directory
