"""The broker's own configuration files: the callers' tokens and the access policy (YAML)."""
