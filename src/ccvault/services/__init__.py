"""Use cases: what every entry point (HTTP, CLI, MCP, console) calls; they never reach
`storage/` themselves (DESIGN §8, "Layout for more than one entry point")."""
