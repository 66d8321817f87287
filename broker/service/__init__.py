"""Use cases of the broker over the ports it declares; no boto3, gRPC or SQL here."""
