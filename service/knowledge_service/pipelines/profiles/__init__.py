"""Profiles: the registry of named, versioned retrieval settings, and the operations on it."""
