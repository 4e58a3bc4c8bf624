"""The shared ingress: one Gateway API Gateway (implemented by Envoy Gateway) that every service's
HTTPRoute attaches to, exposed through one AWS Network Load Balancer."""

from __future__ import annotations

from typing import Any

GATEWAY_NAMESPACE = "inferfleet-gateway"
GATEWAY_NAME = "inferfleet"
GATEWAY_CLASS = "inferfleet"
ENVOY_NAMESPACE = "envoy-gateway-system"
ENVOY_SERVICE_NAME = "inferfleet-gateway"
"""Fixed name of the load balancer Service Envoy Gateway makes for the Gateway, so the program can
read its hostname (Envoy Gateway otherwise generates a hashed name)."""
ENVOY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


def gateway_objects(environment: str, envoy_replicas: int = 2) -> list[dict[str, Any]]:
    """Namespace, EnvoyProxy (service shape), GatewayClass and the Gateway with an HTTP listener."""
    labels = {"app.kubernetes.io/part-of": "inferfleet", "inferfleet.io/environment": environment}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE, "labels": labels}},
        {
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyProxy",
            "metadata": {"name": GATEWAY_NAME, "namespace": ENVOY_NAMESPACE, "labels": labels},
            "spec": {
                "provider": {
                    "type": "Kubernetes",
                    "kubernetes": {
                        "envoyDeployment": {"replicas": envoy_replicas},
                        "envoyService": {
                            "name": ENVOY_SERVICE_NAME,
                            "type": "LoadBalancer",
                            "annotations": {
                                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                                "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
                            },
                        },
                    },
                }
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS, "labels": labels},
            "spec": {
                "controllerName": ENVOY_CONTROLLER,
                "parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": GATEWAY_NAME,
                    "namespace": ENVOY_NAMESPACE,
                },
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "labels": labels},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}
                ],
            },
        },
    ]
