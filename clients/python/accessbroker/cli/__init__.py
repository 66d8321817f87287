"""brokerctl: the broker from a terminal, a script or a request file (`accessbroker.cli.main`)."""
