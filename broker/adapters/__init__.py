"""Adapters: the AWS and database implementations of the service layer's ports."""
