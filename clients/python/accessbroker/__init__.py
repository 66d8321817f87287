"""Python client for the accessbroker gRPC API."""
