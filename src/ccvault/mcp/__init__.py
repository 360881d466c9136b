"""The vault's MCP server (DESIGN §8): the same tools, resource and prompt over streamable
HTTP at `/mcp` on `ccv serve` and over stdio with `ccv mcp`."""
