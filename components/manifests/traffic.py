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
PIPELINE_ROUTE = "/pipeline"
"""Ray Serve services with pipeline stages also serve the pipeline's application here (stable only)."""
REQUEST_TIMEOUT = "600s"
"""Longest request, first byte to last token of a long streamed completion."""


def route_prefix(service: ServiceSpec) -> str:
    return f"/{service.name}"


def _backend(name: str, port: int, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _rewrite(prefix: str) -> dict[str, Any]:
    return {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": prefix}}}


def http_route(service: ServiceSpec, port: int = s.API_PORT) -> dict[str, Any]:
    """Every engine names its revisions' Services `<service>`, `<service>-canary`, `<service>-shadow`."""
    names = {"stable": service.name, "canary": f"{service.name}-canary", "shadow": f"{service.name}-shadow"}
    if service.canary:
        weight = service.canary.weight_percent
        refs = [_backend(names["stable"], port, 100 - weight), _backend(names["canary"], port, weight)]
    else:
        refs = [_backend(names["stable"], port)]
    filters: list[dict[str, Any]] = [_rewrite(API_PREFIX)]
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
    rules = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": f"{prefix}{API_PREFIX}"}}],
            "filters": filters,
            "backendRefs": refs,
            "timeouts": {"request": REQUEST_TIMEOUT},
        }
    ]
    if service.pipeline:
        rules.append(
            {
                "matches": [{"path": {"type": "PathPrefix", "value": f"{prefix}{PIPELINE_ROUTE}"}}],
                "filters": [_rewrite(PIPELINE_ROUTE)],
                "backendRefs": [_backend(names["stable"], port)],
                "timeouts": {"request": REQUEST_TIMEOUT},
            }
        )
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": s.metadata(service.name, {"app.kubernetes.io/name": service.name, "app.kubernetes.io/part-of": s.PART_OF}),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
            "rules": rules,
        },
    }
