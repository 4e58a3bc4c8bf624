"""Pulumi wiring of the cluster's add-ons (pinned Helm charts) and of the objects from manifests/."""
