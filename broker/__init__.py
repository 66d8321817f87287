"""accessbroker: grants EC2 instances least-privilege access to S3 buckets."""
