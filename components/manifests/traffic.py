"""One HTTPRoute per service on the shared Gateway: its OpenAI-compatible API, split between the
stable and canary Services by weight, with a share of requests mirrored to the shadow Service.

Requests reach a service at `/<service>/v1/...`; the gateway rewrites the prefix to `/v1/...` before the
engine sees it, so many models share one load balancer and nothing but the API is exposed.
"""

from __future__ import annotations

from typing import Any

from components.manifests import serving as s
from components.manifests.gateway import GATEWAY_NAME, GATEWAY_NAMESPACE
from components.spec.models import ServiceSpec

API_PREFIX = "/v1"
"""The OpenAI-compatible API (chat/completions, completions, embeddings, models)."""
REQUEST_TIMEOUT = "600s"
"""Longest request, first byte to last token of a long streamed completion."""


def route_prefix(service: ServiceSpec) -> str:
    return f"/{service.name}"


def _backend(name: str, port: int, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def http_route(service: ServiceSpec, port: int, backends: dict[str, str] | None = None) -> dict[str, Any]:
    """`backends` maps revision -> Service name, defaulting to the names of serving.cluster_service."""
    names = backends or {
        "stable": service.name,
        **({"canary": f"{service.name}-canary"} if service.canary else {}),
        **({"shadow": f"{service.name}-shadow"} if service.shadow else {}),
    }
    if service.canary:
        weight = service.canary.weight_percent
        refs = [_backend(names["stable"], port, 100 - weight), _backend(names["canary"], port, weight)]
    else:
        refs = [_backend(names["stable"], port)]
    filters: list[dict[str, Any]] = [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": API_PREFIX}}}
    ]
    if service.shadow:
        filters.append(
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"group": "", "kind": "Service", "name": names["shadow"], "port": port},
                    "percent": service.shadow.mirror_percent,
                },
            }
        )
    prefix = route_prefix(service)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": s.metadata(service.name, {"app.kubernetes.io/name": service.name, "app.kubernetes.io/part-of": s.PART_OF}),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"{prefix}{API_PREFIX}"}}],
                    "filters": filters,
                    "backendRefs": refs,
                    "timeouts": {"request": REQUEST_TIMEOUT},
                }
            ],
        },
    }
