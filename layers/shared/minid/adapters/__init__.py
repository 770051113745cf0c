"""Adapters: the domain's ports on AWS. Each takes its boto3 client in its constructor."""
