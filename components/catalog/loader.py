"""Typed access to the catalog's data files, checked once when first loaded."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.spec.models import ModelArchitecture, ModelSpec

DATA_DIR = Path(__file__).parent / "data"


class CatalogError(Exception):
    """A catalog data file is wrong: a bug in the project, not in the user's stack."""


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class Gpu(_Row):
    name: str = ""
    memory_gib: float = Field(gt=0, alias="memoryGiB")
    memory_bandwidth_gbps: float = Field(gt=0, alias="memoryBandwidthGBps")
    interconnect_gbps: float = Field(gt=0, alias="interconnectGBps")
    interconnect_source: str = Field(min_length=1)
    bf16_dense_tflops: float = Field(gt=0)
    fp8_dense_tflops: float | None = Field(default=None, gt=0)
    source: str = Field(min_length=1)


class InstanceType(_Row):
    name: str = ""
    gpu: str | None
    gpu_count: int = Field(ge=0)
    vcpu: int = Field(gt=0)
    memory_gib: float = Field(gt=0, alias="memoryGiB")
    efa_gbps: float = Field(ge=0)
    gpu_interconnect: Literal["nvlink", "pcie", "none"]
    local_nvme_gb: float = Field(ge=0, alias="localNvmeGB")
    max_pods: int = Field(gt=0)
    """The kubelet's maxPods on an EKS AL2023 node of this type with the VPC CNI's defaults (no prefix
    delegation), as nodeadm sets it; its source is in instances.yaml's header. Read by the schedulability
    check (components.checks.node_shapes) for allocatable memory: nodeadm's kube-reserved memory is
    11Mi per pod + 255Mi, so maxPods moves a node's allocatable by up to about 8Gi (737 pods)."""
    on_demand_usd_per_hour: float = Field(gt=0)
    spot_discount: float = Field(ge=0, lt=1)
    offered_on_demand: bool = Field(default=True, description="EC2 sells it on demand in the catalog's region.")
    offered_spot: bool = Field(default=True, description="EC2 sells it as spot in the catalog's region.")
    source: str = Field(min_length=1)
    price_source: str = Field(min_length=1)

    def usd_per_hour(self, capacity_type: str) -> float:
        discount = self.spot_discount if capacity_type == "spot" else 0.0
        return self.on_demand_usd_per_hour * (1 - discount)


class CatalogModel(ModelArchitecture):
    """A known model: its architecture plus the Hugging Face ids that name it."""

    id: str = ""
    names: list[str] = Field(min_length=1)
    source: str = Field(min_length=1)


class _Price(_Row):
    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class AwsPrices(_Row):
    ebs_gp3_usd_per_gb_month: _Price
    eks_cluster_usd_per_hour: _Price
    nat_gateway_usd_per_hour: _Price
    hours_per_month: _Price


class Catalog:
    def __init__(
        self,
        gpus: dict[str, Gpu],
        instance_types: dict[str, InstanceType],
        models: dict[str, CatalogModel],
        prices: AwsPrices,
    ):
        self.gpus = gpus
        self.instance_types = instance_types
        self.models = models
        self.prices = prices
        self._model_by_name = {name.lower(): model for model in models.values() for name in model.names}

    def gpu_of(self, instance: InstanceType) -> Gpu:
        if instance.gpu is None:
            raise KeyError(f"{instance.name} has no GPU")
        return self.gpus[instance.gpu]

    def model_named(self, name: str) -> CatalogModel | None:
        return self._model_by_name.get(name.lower())

    def architecture_for(self, model: ModelSpec) -> ModelArchitecture | None:
        """The spec's inline architecture, the catalog id it names, or the catalog entry for its name."""
        if isinstance(model.architecture, ModelArchitecture):
            return model.architecture
        if isinstance(model.architecture, str):
            return self.models.get(model.architecture)
        return self.model_named(model.name)


class AwsRegion(_Row):
    """A commercial AWS Region and its Availability Zones (data/aws_regions.yaml, with its sources)."""

    code: str = Field(default="", pattern=r"^[a-z]{2}-[a-z]+-\d$")
    name: str = Field(min_length=1)
    zone_mapping: Literal["uniform", "independent"] = Field(
        default="uniform", description="independent: AZ letters map to AZs per account (the oldest Regions)."
    )
    az_ids: list[str] = Field(min_length=2)
    zones: list[Annotated[str, Field(pattern=r"^[a-z]$")]] = Field(min_length=2)
    """The letters an AZ's name may end in: `us-east-1` + `a`."""

    @property
    def zone_names(self) -> list[str]:
        return [f"{self.code}{letter}" for letter in self.zones]


class AwsRegions(_Row):
    as_of: str = Field(min_length=1)
    source: str = Field(min_length=1)
    regions: dict[str, AwsRegion]


def _az_id_prefix(code: str) -> str:
    """`us-east-1` -> `use1-az`, `ap-northeast-1` -> `apne1-az`: how AWS forms a Region's AZ IDs."""
    country, direction, number = code.split("-")
    short = {"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}.get(direction, direction[0])
    return f"{country}{short}{number}-az"


@functools.cache
def load_aws_regions() -> AwsRegions:
    """The Regions `validate` accepts and their AZ names, checked once: unique letters, AZ IDs of the Region."""
    path = DATA_DIR / "aws_regions.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["regions"] = {code: {**fields, "code": code} for code, fields in (raw.get("regions") or {}).items()}
    try:
        table = AwsRegions.model_validate(raw)
    except ValidationError as error:
        raise CatalogError(f"{path}: {error}") from None
    for code, region in table.regions.items():
        id_prefix = _az_id_prefix(code)
        if len(set(region.zones)) != len(region.zones) or len(set(region.az_ids)) != len(region.az_ids):
            raise CatalogError(f"{path}: regions.{code}: a zone or AZ ID is listed twice")
        if not all(az_id.startswith(id_prefix) for az_id in region.az_ids):
            raise CatalogError(f"{path}: regions.{code}: AZ IDs must start with {id_prefix}")
    return table


def _load_rows(file: str, key: str, row_type: type[BaseModel], id_field: str | None = None) -> dict:
    """Rows keyed by name; the key is copied into `id_field` so a row knows its own name."""
    path = DATA_DIR / file
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = {}
    for name, fields in (raw.get(key) or {}).items():
        values = {**fields, id_field: name} if id_field else fields
        try:
            rows[name] = row_type.model_validate(values)
        except ValidationError as error:
            raise CatalogError(f"{path}: {key}.{name}: {error}") from None
    return rows


@functools.cache
def load_catalog() -> Catalog:
    gpus = _load_rows("gpus.yaml", "gpus", Gpu, id_field="name")
    instance_types = _load_rows("instances.yaml", "instanceTypes", InstanceType, id_field="name")
    models = _load_rows("models.yaml", "models", CatalogModel, id_field="id")
    for instance in instance_types.values():
        if instance.gpu is not None and instance.gpu not in gpus:
            raise CatalogError(f"instances.yaml: {instance.name}: unknown gpu {instance.gpu!r}")
        if (instance.gpu is None) != (instance.gpu_count == 0):
            raise CatalogError(f"instances.yaml: {instance.name}: gpu and gpuCount disagree")
    prices_path = DATA_DIR / "aws_prices.yaml"
    try:
        prices = AwsPrices.model_validate(yaml.safe_load(prices_path.read_text(encoding="utf-8")))
    except ValidationError as error:
        raise CatalogError(f"{prices_path}: {error}") from None
    return Catalog(gpus, instance_types, models, prices)
