"""Pulumi ComponentResources for the AWS side: network, EKS cluster, GPU pools, IAM, storage."""
