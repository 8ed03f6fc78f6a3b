"""The MCP surface: tools, transports, and binding each session to its tenant."""
