"""Customer Context Vault: verified customer facts for AI agents."""

__version__ = "0.1.0"
