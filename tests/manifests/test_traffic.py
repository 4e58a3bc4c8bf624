"""HTTPRoutes: the OpenAI API under the service's prefix, canary weights, shadow mirroring."""

from __future__ import annotations

from components.manifests.traffic import http_route
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.validators import validate_object


def service_named(spec, name):
    return next(s for s in spec.services if s.name == name)


def test_canary_takes_its_weight_and_stable_the_rest(prod):
    spec, _ = prod
    route = http_route(service_named(spec, "chat"), 8000)
    validate_object(route, KUBERNETES_VERSION)
    (rule,) = route["spec"]["rules"]
    weights = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
    assert weights == {"chat": 95, "chat-canary": 5}


def test_shadow_gets_a_mirrored_share(planned):
    spec, _ = planned
    for service in spec.services:
        route = http_route(service, 8000)
        validate_object(route, KUBERNETES_VERSION)
        mirrors = [f["requestMirror"] for f in route["spec"]["rules"][0]["filters"] if f["type"] == "RequestMirror"]
        if service.shadow:
            assert mirrors == [
                {"backendRef": {"group": "", "kind": "Service", "name": f"{service.name}-shadow", "port": 8000}, "percent": service.shadow.mirror_percent}
            ]
        else:
            assert mirrors == []


def test_api_is_served_under_the_service_prefix_and_rewritten(prod):
    spec, _ = prod
    (rule,) = http_route(service_named(spec, "rerank"), 8000)["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/rerank/v1"}}]
    (rewrite,) = [f for f in rule["filters"] if f["type"] == "URLRewrite"]
    assert rewrite["urlRewrite"]["path"] == {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "rerank", "port": 8000}]
