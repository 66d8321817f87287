"""The AWS adapter: boto3 implementations of the Iam and Ec2 ports."""

from broker.adapters.aws.clients import AwsClients, StaticCredentials, make_aws_clients
from broker.adapters.aws.ec2 import BotoEc2
from broker.adapters.aws.iam import BotoIam

__all__ = ["AwsClients", "BotoEc2", "BotoIam", "StaticCredentials", "make_aws_clients"]
