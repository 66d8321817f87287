"""The gRPC API: servicer, error mapping and server."""
