"""Ways in: the gRPC server (the only user of the generated stubs) and the command line."""
