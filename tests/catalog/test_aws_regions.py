"""The catalog's AWS Region table (data/aws_regions.yaml), which `validate` checks aws.region and the AZs
against, and the catalog facts the spec's limits (components/spec/limits.py) are written against."""

from __future__ import annotations

import pytest
import yaml

from components.catalog import load_catalog
from components.catalog.loader import DATA_DIR, CatalogError, _az_id_prefix, load_aws_regions
from components.spec import limits as L
from components.spec.rules import architecture_problems

COMMERCIAL_REGIONS = {
    # Every Region of the `aws` partition in botocore 1.43.11's data/endpoints.json.
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1",
    "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
    "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}


@pytest.fixture(scope="module")
def table():
    return load_aws_regions()


def test_every_commercial_region_is_listed_and_no_other(table):
    assert set(table.regions) == COMMERCIAL_REGIONS
    assert table.as_of and "botocore" in table.source and "Availability Zones" in table.source


def test_the_regions_the_example_stacks_use_and_their_zones(table):
    assert table.regions["us-east-1"].zone_names == [f"us-east-1{letter}" for letter in "abcdef"]
    assert table.regions["us-west-2"].zones == ["a", "b", "c", "d"]
    assert table.regions["ca-central-1"].zones == ["a", "b", "d"]


@pytest.mark.parametrize("code", sorted(COMMERCIAL_REGIONS))
def test_each_region_has_at_least_as_many_zone_names_as_az_ids(table, code):
    """Names are the Region's code and a letter; every AZ ID needs a name (an independently mapped Region may list
    a letter more, for accounts that still see a retired AZ)."""
    region = table.regions[code]
    assert region.code == code and region.name
    assert len(region.zones) >= len(region.az_ids) >= 2
    if region.zone_mapping == "uniform":
        assert len(region.zones) == len(region.az_ids)
    assert all(az_id.startswith(_az_id_prefix(code)) for az_id in region.az_ids)


@pytest.mark.parametrize(("code", "prefix"), [("us-east-1", "use1-az"), ("ap-northeast-2", "apne2-az"),
                                              ("eu-central-2", "euc2-az"), ("me-south-1", "mes1-az")])
def test_az_id_prefix_follows_aws_scheme(code, prefix):
    assert _az_id_prefix(code) == prefix


def test_a_broken_region_table_is_a_catalog_error(tmp_path, monkeypatch):
    raw = yaml.safe_load((DATA_DIR / "aws_regions.yaml").read_text(encoding="utf-8"))
    raw["regions"]["us-east-1"]["azIds"].append("usw2-az1")
    (tmp_path / "aws_regions.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setattr("components.catalog.loader.DATA_DIR", tmp_path)
    load_aws_regions.cache_clear()
    try:
        with pytest.raises(CatalogError, match="regions.us-east-1: AZ IDs must start with use1-az"):
            load_aws_regions()
    finally:
        load_aws_regions.cache_clear()


def test_no_catalog_instance_has_more_gpus_than_the_spec_limits_assume():
    assert max(instance.gpu_count for instance in load_catalog().instance_types.values()) <= L.MAX_GPUS_PER_NODE
    assert max(instance.vcpu for instance in load_catalog().instance_types.values()) <= L.MAX_STAGE_CPUS


def test_catalog_architectures_are_consistent_and_within_the_spec_limits():
    """CatalogModel is a ModelArchitecture, so loading already held it to the models' bounds; the cross-field
    rule inline architectures meet holds for the catalog's too."""
    for model_id, model in load_catalog().models.items():
        assert list(architecture_problems(model)) == [], model_id
        assert model.context_length <= L.MAX_CONTEXT_TOKENS
