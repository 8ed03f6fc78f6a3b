"""The `bulkhead` command: `main` parses the command line and runs one subcommand.

`main` holds the serving and maintenance commands and the parser, `tenants` the operator's
commands on tenant schemas, `logs` how the process logs, `subcommands` what every command shares.
"""

from mcp_server.cli.main import EXIT_CODE, main

__all__ = ["EXIT_CODE", "main"]
