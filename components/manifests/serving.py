"""Names the serving workloads share between the AWS side (IRSA trust) and their manifests."""

from __future__ import annotations

from urllib.parse import urlparse

from components.spec.models import ServiceSpec

SERVING_NAMESPACE = "inferfleet-serving"


def service_account_name(service: ServiceSpec) -> str:
    return f"{service.name}-model-reader"


def s3_location(service: ServiceSpec) -> tuple[str, str] | None:
    """(bucket, key prefix without slashes) of an s3:// model URI; None for other schemes."""
    parsed = urlparse(service.model.uri)
    if parsed.scheme != "s3":
        return None
    return parsed.netloc, parsed.path.strip("/")
