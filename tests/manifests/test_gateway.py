"""The shared Gateway, checked against the Gateway API CRD schemas the project relies on."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from components.manifests.gateway import ENVOY_SERVICE_NAME, gateway_objects

CRDS = Path(__file__).resolve().parents[2] / "components" / "manifests" / "crds"


def crd_schema(file: str, version: str) -> dict:
    crd = yaml.safe_load((CRDS / file).read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def objects():
    return {obj["kind"]: obj for obj in gateway_objects("prod")}


@pytest.mark.parametrize(
    "kind,file", [("GatewayClass", "gateway.networking.k8s.io_gatewayclasses.yaml"),
                  ("Gateway", "gateway.networking.k8s.io_gateways.yaml")]
)
def test_gateway_api_objects_match_their_crd_schema(objects, kind, file):
    jsonschema.validate(objects[kind], crd_schema(file, "v1"))


def test_gateway_uses_the_class_whose_envoy_service_has_a_fixed_name(objects):
    assert objects["Gateway"]["spec"]["gatewayClassName"] == objects["GatewayClass"]["metadata"]["name"]
    reference = objects["GatewayClass"]["spec"]["parametersRef"]
    proxy = objects["EnvoyProxy"]
    assert (reference["name"], reference["namespace"]) == (proxy["metadata"]["name"], proxy["metadata"]["namespace"])
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["name"] == ENVOY_SERVICE_NAME
    assert service["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
