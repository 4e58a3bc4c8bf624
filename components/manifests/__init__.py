"""Pure functions from spec (and plan) to Kubernetes objects as plain dicts; no Pulumi import."""
