"""The knowledge command."""
