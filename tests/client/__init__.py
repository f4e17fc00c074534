"""Tests of the client distribution (a package, so its conftest does not shadow the root one)."""
