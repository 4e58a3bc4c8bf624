"""The spec-only cross-field rules (components/spec/rules.py): one failing and one passing case each.

Each test mutates the valid stack from conftest, writes it as <environment>.yaml and reads it back
with read_spec; `spec_problems` returns (dotted path, message) pairs, [] for a valid stack.
"""

from __future__ import annotations

import copy

import pytest

from components.spec import rules


def test_every_rule_is_registered_and_covered_here():
    assert [rule.__name__ for rule in rules.SPEC_RULES] == [
        "unique_names",
        "pools_exist",
        "min_not_above_max",
        "nodes_within_cluster_limit",
        "warm_pools_on_single_type_on_demand",
        "warm_pools_need_al2023",
        "vpc_cidr_fits_subnets",
        "zones_in_region",
        "s3_uris_valid",
        "inline_architectures_consistent",
        "public_access_cidrs_valid",
        "workload_fits_max_model_len",
        "availability_needs_replicas",
        "tag_keys_valid",
        "engine_args_consistent",
        "no_secrets_in_spec",
        "engine_sections_match",
        "revisions_differ",
        "tracing_endpoint_needs_tracing",
        "deploy_gate_needs_built_images",
        "private_endpoint_needs_runner",
    ]


def test_valid_fixture_has_no_problems(stack, spec_problems):
    assert spec_problems(stack) == []


# unique_names


def test_duplicate_gpu_pool_name_rejected(stack, spec_problems):
    stack["gpuPools"][1]["name"] = "ondemand"
    stack["services"][0]["pools"] = ["ondemand"]
    assert spec_problems(stack) == [("gpuPools.1.name", "duplicate gpuPool name 'ondemand'")]


def test_duplicate_service_name_rejected(stack, spec_problems):
    stack["services"].append(copy.deepcopy(stack["services"][0]))
    assert spec_problems(stack) == [("services.1.name", "duplicate service name 'chat'")]


def test_distinct_service_names_accepted(stack, spec_problems):
    stack["services"].append(copy.deepcopy(stack["services"][0]))
    stack["services"][1]["name"] = "chat-canary"
    assert spec_problems(stack) == []


def test_duplicate_availability_zone_rejected(stack, spec_problems):
    stack["aws"]["availabilityZones"] = ["us-east-1a", "us-east-1b", "us-east-1a"]
    assert spec_problems(stack) == [("aws.availabilityZones.2", "duplicate AZ 'us-east-1a'")]


def test_duplicate_pool_in_a_service_rejected(stack, spec_problems):
    stack["services"][0]["pools"] = ["spot", "ondemand", "spot"]
    assert spec_problems(stack) == [("services.0.pools.2", "duplicate pool 'spot'")]


# pools_exist


def test_service_naming_a_pool_that_does_not_exist_rejected(stack, spec_problems):
    stack["services"][0]["pools"] = ["spot", "h100"]
    assert spec_problems(stack) == [("services.0.pools.1", "no GPU pool named 'h100'; pools: ondemand, spot")]


def test_service_naming_existing_pools_accepted(stack, spec_problems):
    stack["services"][0]["pools"] = ["ondemand"]
    assert spec_problems(stack) == []


# min_not_above_max


def test_system_pool_min_above_max_rejected(stack, spec_problems):
    stack["cluster"]["systemPool"]["minSize"] = 3
    assert spec_problems(stack) == [("cluster.systemPool.minSize", "3 is above maxSize 2")]


def test_gpu_pool_min_above_max_rejected(stack, spec_problems):
    stack["gpuPools"][1]["minSize"] = 5
    assert spec_problems(stack) == [("gpuPools.1.minSize", "5 is above maxSize 4")]


def test_replicas_min_above_max_rejected(stack, spec_problems):
    stack["services"][0]["replicas"] = {"min": 3, "max": 2}
    assert spec_problems(stack) == [("services.0.replicas.min", "3 is above max 2")]


def test_min_equal_to_max_accepted(stack, spec_problems):
    stack["cluster"]["systemPool"]["minSize"] = 2
    stack["gpuPools"][1]["minSize"] = 4
    stack["services"][0]["replicas"] = {"min": 2, "max": 2}
    assert spec_problems(stack) == []


def test_default_system_pool_min_above_explicit_max_rejected(stack, spec_problems):
    stack["cluster"]["systemPool"] = {"maxSize": 1}  # minSize defaults to 2
    assert spec_problems(stack) == [("cluster.systemPool.minSize", "2 is above maxSize 1")]


# warm_pools_on_single_type_on_demand


def test_warm_pool_rejected_on_spot_pool(stack, spec_problems):
    stack["gpuPools"][1]["warmPool"] = {"size": 1}
    assert spec_problems(stack) == [
        (
            "gpuPools.1.warmPool",
            "a warm pool needs capacityType onDemand: AWS refuses warm pools on groups with spot instances",
        )
    ]


def test_warm_pool_rejected_with_several_instance_types(stack, spec_problems):
    stack["gpuPools"][0]["instanceTypes"] = ["g6.xlarge", "g6.2xlarge"]
    stack["gpuPools"][0]["warmPool"] = {"size": 1}
    assert spec_problems(stack) == [
        (
            "gpuPools.0.warmPool",
            "a warm pool needs exactly one instance type: AWS refuses warm pools with a mixed instances policy",
        )
    ]


def test_warm_pool_larger_than_the_pool_can_grow_rejected(stack, spec_problems):
    stack["gpuPools"][0]["warmPool"] = {"size": 3}  # minSize 1, maxSize 3
    assert spec_problems(stack) == [
        (
            "gpuPools.0.warmPool.size",
            "3 warm instances but the pool can only grow by 2 (maxSize 3 - minSize 1); the extra ones would never serve",
        )
    ]


def test_warm_pool_on_a_pool_that_cannot_grow_rejected(stack, spec_problems):
    stack["gpuPools"][0].update(minSize=3, maxSize=3, warmPool={"size": 1})
    assert spec_problems(stack) == [
        (
            "gpuPools.0.warmPool.size",
            "1 warm instances but the pool can only grow by 0 (maxSize 3 - minSize 3); the extra ones would never serve",
        )
    ]


def test_warm_pool_on_single_type_on_demand_pool_within_headroom_accepted(stack, spec_problems):
    stack["gpuPools"][0]["warmPool"] = {"size": 2, "state": "Hibernated", "reuseOnScaleIn": False}
    assert spec_problems(stack) == []


# vpc_cidr_fits_subnets


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.1/16", "not a valid IPv4 CIDR: 10.0.0.1/16 has host bits set"),
        ("banana", "not a valid IPv4 CIDR: Expected 4 octets in 'banana'"),
        ("300.0.0.0/16", "not a valid IPv4 CIDR: Octet 300 (> 255) not permitted in '300.0.0.0'"),
        ("10.0.0.0/15", "AWS allows VPC CIDRs from /16 to /28, got /15"),
        ("10.0.0.0/8", "AWS allows VPC CIDRs from /16 to /28, got /8"),
        ("10.0.0.0/29", "AWS allows VPC CIDRs from /16 to /28, got /29"),
    ],
)
def test_invalid_or_out_of_range_vpc_cidr_rejected(stack, spec_problems, cidr, message):
    stack["network"]["vpcCidr"] = cidr
    assert spec_problems(stack) == [("network.vpcCidr", message)]


def test_vpc_cidr_too_small_for_the_az_count_rejected(stack, spec_problems):
    stack["network"]["vpcCidr"] = "10.0.0.0/23"
    assert spec_problems(stack) == [
        (
            "network.vpcCidr",
            "/23 is too small for 2 AZs: private subnets would be /25 (need /24 or larger) "
            "and public /26 (need /27 or larger); use /22 or larger",
        )
    ]


def test_vpc_cidr_that_fits_two_azs_is_too_small_for_four(stack, spec_problems):
    stack["network"]["vpcCidr"] = "10.0.0.0/22"
    assert spec_problems(stack) == []
    stack["aws"]["availabilityZones"] = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    assert spec_problems(stack) == [
        (
            "network.vpcCidr",
            "/22 is too small for 4 AZs: private subnets would be /25 (need /24 or larger) "
            "and public /27 (need /27 or larger); use /21 or larger",
        )
    ]


@pytest.mark.parametrize("cidr", ["172.20.0.0/16", "172.20.128.0/17"])
def test_vpc_cidr_overlapping_the_service_cidr_rejected(stack, spec_problems, cidr):
    stack["network"]["vpcCidr"] = cidr
    assert spec_problems(stack) == [
        ("network.vpcCidr", "overlaps 172.20.0.0/16, the cluster's Kubernetes Service CIDR; pick a range outside it")
    ]


def test_default_vpc_cidr_accepted(stack, spec_problems):
    del stack["network"]["vpcCidr"]
    assert spec_problems(stack) == []


# zones_in_region


US_EAST_1_AZS = "us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f"


@pytest.mark.parametrize(
    "zone", ["us-west-2a", "us-east-1", "us-east-1ab", "us-east-11", "eu-west-1a", "us-east-1z", "us-east-1g"]
)
def test_availability_zone_outside_the_region_rejected(stack, spec_problems, zone):
    stack["aws"]["availabilityZones"][1] = zone
    assert spec_problems(stack) == [
        ("aws.availabilityZones.1", f"{zone!r} is not an AZ of region us-east-1; its AZs: {US_EAST_1_AZS}")
    ]


def test_availability_zones_of_another_region_accepted_when_region_matches(stack, spec_problems):
    stack["aws"] = {"region": "eu-west-1", "availabilityZones": ["eu-west-1a", "eu-west-1c"]}
    assert spec_problems(stack) == []


def test_every_zone_of_us_east_1_accepted(stack, spec_problems):
    stack["aws"]["availabilityZones"] = [f"us-east-1{letter}" for letter in "abcdef"]
    assert spec_problems(stack) == []


def test_zone_letters_a_region_does_not_have_rejected(stack, spec_problems):
    """Canada (Central) has AZ IDs cac1-az1, -az2 and -az4: its zones are a, b and d."""
    stack["aws"] = {"region": "ca-central-1", "availabilityZones": ["ca-central-1a", "ca-central-1c"]}
    assert spec_problems(stack) == [
        ("aws.availabilityZones.1", "'ca-central-1c' is not an AZ of region ca-central-1; its AZs: "
                                    "ca-central-1a, ca-central-1b, ca-central-1d")
    ]


@pytest.mark.parametrize(
    ("region", "why"),
    [
        ("xx-fake-1", "e.g. us-east-1"),
        ("us-easst-1", "did you mean us-east-1?"),
        ("us-gov-west-1", "GovCloud and China Regions are other partitions, and the program writes arn:aws: ARNs"),
        ("cn-north-1", "GovCloud and China Regions are other partitions, and the program writes arn:aws: ARNs"),
    ],
)
def test_unknown_region_rejected_once_not_per_zone(stack, spec_problems, region, why):
    stack["aws"] = {"region": region, "availabilityZones": [f"{region}a", f"{region}b"]}
    assert spec_problems(stack) == [
        ("aws.region", f"{region!r} is not a Region of the commercial AWS partition (catalog aws_regions.yaml, as of "
                       f"2026-05): {why}")
    ]


def test_a_huge_zone_name_is_not_echoed_in_full(stack, spec_problems):
    stack["aws"]["availabilityZones"][1] = "us-east-1" + "b" * 100_000
    [(path, message)] = spec_problems(stack)
    assert path == "aws.availabilityZones.1" and len(message) < 300 and "100,009 characters" in message


# s3_uris_valid


@pytest.mark.parametrize(
    ("bucket", "why"),
    [
        ("bad..bucket", "no two adjacent periods, and no period next to a hyphen"),
        ("bad.-bucket", "no two adjacent periods, and no period next to a hyphen"),
        ("192.168.1.1", "must not be formatted as an IP address"),
        ("xn--bucket", "uses a prefix or suffix S3 reserves"),
        ("sthree-bucket", "uses a prefix or suffix S3 reserves"),
        ("amzn-s3-demo-bucket", "uses a prefix or suffix S3 reserves"),
        ("models-s3alias", "uses a prefix or suffix S3 reserves"),
        ("models--ol-s3", "uses a prefix or suffix S3 reserves"),
        ("models.mrap", "uses a prefix or suffix S3 reserves"),
        ("models--x-s3", "uses a prefix or suffix S3 reserves"),
    ],
)
def test_model_uri_with_a_bucket_name_s3_refuses_rejected(stack, spec_problems, bucket, why):
    stack["services"][0]["model"]["uri"] = f"s3://{bucket}/llama-8b"
    assert spec_problems(stack) == [
        ("services.0.model.uri", f"bucket {bucket!r}: {why} (S3's bucket naming rules)")
    ]


def test_state_backend_bucket_checked_too(stack, spec_problems):
    stack["cluster"]["deployRunner"] = {"stateBackend": "s3://10.0.0.1/inferfleet?region=us-east-1"}
    assert spec_problems(stack) == [
        ("cluster.deployRunner.stateBackend",
         "bucket '10.0.0.1': must not be formatted as an IP address (S3's bucket naming rules)")
    ]


@pytest.mark.parametrize("uri", ["s3://models/llama/*", "s3://models/${aws:username}/x"])
def test_model_prefix_an_iam_policy_would_read_as_a_wildcard_rejected(stack, spec_problems, uri):
    stack["services"][0]["model"]["uri"] = uri
    [(path, message)] = spec_problems(stack)
    assert path == "services.0.model.uri" and "IAM policies read as a wildcard or variable" in message


def test_model_uri_with_a_query_rejected(stack, spec_problems):
    stack["services"][0]["model"]["uri"] = "s3://models/llama?versionId=3"
    assert spec_problems(stack) == [
        ("services.0.model.uri", "a model URI takes no ?query or #fragment: the weights are read from s3://bucket/prefix")
    ]


def test_model_prefix_over_s3_key_length_rejected(stack, spec_problems):
    stack["services"][0]["model"]["uri"] = "s3://models/" + "k" * 1025
    assert spec_problems(stack) == [("services.0.model.uri", "the key prefix is over S3's 1024 bytes")]


@pytest.mark.parametrize(
    "uri", ["s3://inferfleet-dev-models/llama-8b", "s3://my.models.bucket/a/b/c", "s3://abc", "hf://meta-llama/x"]
)
def test_valid_s3_and_hf_uris_accepted(stack, spec_problems, uri):
    stack["services"][0]["model"]["uri"] = uri
    assert spec_problems(stack) == []


# inline_architectures_consistent

INLINE_8B = {
    "parameters": 8030261248, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32, "kvHeads": 8,
    "vocabSize": 128256, "contextLength": 131072,
}


def test_consistent_inline_architecture_accepted(stack, spec_problems):
    stack["services"][0]["model"]["architecture"] = dict(INLINE_8B)
    assert spec_problems(stack) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"experts": 1, "activeExperts": 1}, ("activeExperts", "1 routed of 1 experts: a token routes to fewer experts than there are")),
        ({"experts": 8, "activeExperts": 0}, ("activeExperts", "experts and activeExperts are both 0 (a dense model) or both positive (MoE)")),
        ({"activeParameters": 9_000_000_000}, ("activeParameters", "9,000,000,000 active of 8,030,261,248 parameters: more than the model has")),
        ({"experts": 8, "activeExperts": 2, "activeParameters": 1_000_000_000},
         ("activeParameters", "fewer than the routed experts' share of the parameters (activeParameters x experts < "
                              "activeExperts x parameters): the shared weights would be negative")),
        ({"kvHeads": 12}, ("kvHeads", "12 KV heads must divide the 32 attention heads (grouped-query attention)")),
        ({"hiddenSize": 4100}, ("headDim", "hiddenSize 4100 is not a multiple of 32 attention heads: give headDim")),
    ],
)
def test_inline_architecture_contradicting_itself_rejected(stack, spec_problems, change, problem):
    """Each of these crashed the planner (ZeroDivisionError, a complex step time, OverflowError) before."""
    stack["services"][0]["model"]["architecture"] = {**INLINE_8B, **change}
    key, message = problem
    assert (f"services.0.model.architecture.{key}", message) in spec_problems(stack)


# public_access_cidrs_valid


def test_invalid_public_access_cidr_rejected(stack, spec_problems):
    stack["cluster"]["publicAccessCidrs"] = ["203.0.113.0/24", "203.0.113.7/24", "nope"]
    assert spec_problems(stack) == [
        ("cluster.publicAccessCidrs.1", "not a valid IPv4 CIDR: 203.0.113.7/24 has host bits set"),
        ("cluster.publicAccessCidrs.2", "not a valid IPv4 CIDR: Expected 4 octets in 'nope'"),
    ]


RUNNER = {"stateBackend": "s3://acme-pulumi-state/inferfleet?region=us-east-1"}


def test_public_access_cidrs_with_private_endpoint_rejected(stack, spec_problems):
    stack["cluster"].update(endpointAccess="private", deployRunner=RUNNER, publicAccessCidrs=["203.0.113.0/24"])
    assert spec_problems(stack) == [("cluster.publicAccessCidrs", "has no effect with endpointAccess private")]


@pytest.mark.parametrize("access", ["public", "publicAndPrivate"])
def test_valid_public_access_cidrs_with_public_endpoint_accepted(stack, spec_problems, access):
    stack["cluster"]["endpointAccess"] = access
    stack["cluster"]["publicAccessCidrs"] = ["203.0.113.0/24", "198.51.100.10/32"]
    assert spec_problems(stack) == []


def test_private_endpoint_without_public_cidrs_accepted(stack, spec_problems):
    stack["cluster"].update(endpointAccess="private", deployRunner=RUNNER)
    assert spec_problems(stack) == []


# private_endpoint_needs_runner


def test_a_private_endpoint_needs_the_runner_that_deploys_the_workloads(stack, spec_problems):
    stack["cluster"]["endpointAccess"] = "private"
    ((path, message),) = spec_problems(stack)
    assert path == "cluster.endpointAccess" and "give cluster.deployRunner" in message


@pytest.mark.parametrize("backend", ["https://api.pulumi.com", "s3://Bad_Bucket/x", "file:///tmp/state"])
def test_the_runner_takes_an_s3_state_backend(stack, spec_problems, backend):
    stack["cluster"].update(endpointAccess="private", deployRunner={"stateBackend": backend})
    ((path, _),) = spec_problems(stack)
    assert path == "cluster.deployRunner.stateBackend"


# workload_fits_max_model_len


def test_workload_longer_than_max_model_len_rejected(stack, spec_problems):
    stack["services"][0]["workload"]["inputTokens"] = 8000  # + 256 output = 8256 > 8192
    assert spec_problems(stack) == [
        (
            "services.0.workload",
            "inputTokens + outputTokens = 8256 exceeds maxModelLen 8192; such requests would be refused",
        )
    ]


def test_workload_exactly_max_model_len_accepted(stack, spec_problems):
    stack["services"][0]["workload"]["inputTokens"] = 7936  # + 256 = 8192
    assert spec_problems(stack) == []


def test_workload_without_max_model_len_is_not_checked_by_the_spec(stack, spec_problems):
    del stack["services"][0]["maxModelLen"]
    stack["services"][0]["workload"]["inputTokens"] = 1_000_000
    assert spec_problems(stack) == []


# availability_needs_replicas


def test_availability_slo_with_zero_min_replicas_rejected(stack, spec_problems):
    stack["services"][0]["slo"]["availability"] = 0.999
    stack["services"][0]["replicas"]["min"] = 0
    assert spec_problems(stack) == [
        ("services.0.replicas.min", "a service with an availability SLO cannot scale to zero; set min to 1 or more")
    ]


def test_availability_slo_with_one_min_replica_accepted(stack, spec_problems):
    stack["services"][0]["slo"]["availability"] = 0.999
    assert spec_problems(stack) == []


def test_scale_to_zero_without_availability_slo_accepted(stack, spec_problems):
    stack["services"][0]["replicas"]["min"] = 0
    assert spec_problems(stack) == []


# tag_keys_valid


def test_tag_keys_differing_only_by_case_rejected(stack, spec_problems):
    stack["tags"] = {"Owner": "a", "owner": "b", "team": "c"}
    assert spec_problems(stack) == [
        ("tags.Owner", "tag keys must differ by more than letter case"),
        ("tags.owner", "tag keys must differ by more than letter case"),
    ]


@pytest.mark.parametrize("key", ["aws:createdBy", "AWS:team", "Aws:x"])
def test_tag_key_with_reserved_aws_prefix_rejected(stack, spec_problems, key):
    stack["tags"] = {key: "x"}
    assert spec_problems(stack) == [(f"tags.{key}", "the aws: prefix is reserved for AWS")]


def test_tag_keys_distinct_and_unreserved_accepted(stack, spec_problems):
    stack["tags"] = {"awsAccount": "1", "owner": "a", "team:ml": "b"}
    assert spec_problems(stack) == []


def test_tag_values_and_keys_at_aws_limits_accepted(stack, spec_problems):
    """128-character keys, 256-character values, every allowed punctuation mark, Unicode letters and digits."""
    stack["tags"] = {
        "k" * 128: "v" * 256,
        "cost center/ml_team.a:b=c+d-e@f": "a value _ . : / = + - @ 1",
        "équipe": "données ٣",
        "empty": "",
    }
    assert spec_problems(stack) == []


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({"owner": "v" * 257}, ("tags.owner", "value is 257 characters, over AWS's 256")),
        ({"owner": "a\tb"}, ("tags.owner", "value holds '\\t': AWS tags allow only letters, digits, spaces and _ . : / = + - @")),
        ({"owner": "a,b;c"}, ("tags.owner", "value holds ',' ';': AWS tags allow only letters, digits, spaces and _ . : / = + - @")),
        ({"team*": "x"}, ("tags.team*", "key holds '*': AWS tags allow only letters, digits, spaces and _ . : / = + - @")),
        ({"": "x"}, ('tags.""', "a tag key cannot be empty")),
        ({"owner": "aws:team"}, ("tags.owner", "the aws: prefix is reserved for AWS")),
        ({"Name": "x"}, ("tags.Name", "the program sets this tag itself (Name, inferfleet:*, Kubernetes and autoscaler tags)")),
        ({"inferfleet:environment": "x"},
         ("tags.inferfleet:environment", "the program sets this tag itself (Name, inferfleet:*, Kubernetes and autoscaler tags)")),
        ({"k8s.io/cluster-autoscaler/enabled": "false"},
         ("tags.k8s.io/cluster-autoscaler/enabled",
          "the program sets this tag itself (Name, inferfleet:*, Kubernetes and autoscaler tags)")),
        ({"kubernetes.io/cluster/other": "owned"},
         ("tags.kubernetes.io/cluster/other",
          "the program sets this tag itself (Name, inferfleet:*, Kubernetes and autoscaler tags)")),
    ],
)
def test_tags_past_aws_limits_rejected(stack, spec_problems, tags, problem):
    stack["tags"] = tags
    assert spec_problems(stack) == [problem]


def test_tag_key_over_128_characters_rejected_without_echoing_it(stack, spec_problems):
    stack["tags"] = {"k" * 100_000: "x"}
    [(path, message)] = spec_problems(stack)
    assert path == "tags"
    assert message.endswith("... (100,000 characters): key is 100000 characters, over AWS's 128")
    assert len(message) < 300


def test_a_10_mb_tag_value_is_refused_quickly(stack, spec_problems):
    import time

    from components.spec.models import StackSpec
    from components.spec.rules import tag_keys_valid

    stack["tags"] = {"owner": "v" * 10_000_000}
    spec = StackSpec.model_validate(stack)
    started = time.perf_counter()
    problems = list(tag_keys_valid(spec))
    assert time.perf_counter() - started < 0.1
    assert [(p.path, p.message) for p in problems] == [(("tags", "owner"), "value is 10000000 characters, over AWS's 256")]


def test_more_tags_than_leave_room_for_the_programs_own_rejected(stack, spec_problems):
    stack["tags"] = {f"tag{i}": "x" for i in range(31)}
    assert spec_problems(stack) == [
        ("tags", "31 tags, over 30: AWS allows 50 per resource and the program keeps 20 for its own (an Auto Scaling "
                 "group's Name, autoscaler and node-template tags)")
    ]


def test_as_many_tags_as_leave_room_accepted(stack, spec_problems):
    stack["tags"] = {f"tag{i}": "x" for i in range(30)}
    assert spec_problems(stack) == []


# all rules together


def test_problems_of_several_rules_are_reported_together(stack, spec_problems):
    stack["tags"] = {"aws:x": "1"}
    stack["gpuPools"][1]["warmPool"] = {"size": 1}
    stack["services"][0]["replicas"] = {"min": 3, "max": 2}
    assert sorted(spec_problems(stack)) == [
        ("gpuPools.1.warmPool", "a warm pool needs capacityType onDemand: AWS refuses warm pools on groups with spot instances"),
        ("services.0.replicas.min", "3 is above max 2"),
        ("tags.aws:x", "the aws: prefix is reserved for AWS"),
    ]


# engine_args_consistent


def test_engine_args_may_not_set_what_the_spec_owns(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"tensor-parallel-size": 2, "max_model_len": 4096}
    assert spec_problems(stack) == [
        ("services.0.engineArgs.tensor-parallel-size", "set services.0.tensorParallelSize instead: the spec owns it"),
        ("services.0.engineArgs.max_model_len", "set services.0.maxModelLen instead: the spec owns it"),
    ]


def test_engine_args_the_planner_reads_must_have_usable_values(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"gpu-memory-utilization": 1.5, "max-num-seqs": "many",
                                          "kv-cache-dtype": "int3"}
    assert spec_problems(stack) == [
        ("services.0.engineArgs.gpu-memory-utilization", "should be a number in (0, 1] (got 1.5)"),
        ("services.0.engineArgs.max-num-seqs", "should be a positive integer (got 'many')"),
        ("services.0.engineArgs.kv-cache-dtype", "should be auto, fp8, fp8_e4m3 or fp8_e5m2 (got 'int3')"),
    ]


def test_other_engine_args_and_valid_planner_values_pass(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"gpu_memory_utilization": 0.85, "max-num-seqs": 128,
                                          "kv-cache-dtype": "fp8", "enable-prefix-caching": True}
    assert spec_problems(stack) == []


# warm_pools_need_al2023


def test_warm_pool_rejected_with_bottlerocket(stack, spec_problems):
    stack["cluster"]["gpuAmiFamily"] = "bottlerocket-nvidia"
    stack["gpuPools"][0]["warmPool"] = {"size": 1}
    assert spec_problems(stack) == [("gpuPools.0.warmPool", "warm pools need cluster.gpuAmiFamily al2023-nvidia")]


def test_warm_pool_accepted_with_al2023(stack, spec_problems):
    stack["gpuPools"][0]["warmPool"] = {"size": 1}
    assert spec_problems(stack) == []


# engine_args_consistent on revisions


def test_canary_engine_args_checked_like_the_service(stack, spec_problems):
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"revision": "abc", "max-num-seqs": 0}}
    assert spec_problems(stack) == [
        ("services.0.canary.engineArgs.revision", "set services.0.canary.modelRevision instead: the spec owns it"),
        ("services.0.canary.engineArgs.max-num-seqs", "should be a positive integer (got 0)"),
    ]


# engine_sections_match


def test_pipeline_rejected_outside_ray_serve(stack, spec_problems):
    stack["services"][0]["pipeline"] = [{"name": "retrieve", "importPath": "app.stages:Retriever"}]
    assert spec_problems(stack) == [
        ("services.0.pipeline", "only read by engine ray-serve, but the service's engine is vllm")
    ]


def test_triton_section_rejected_outside_triton(stack, spec_problems):
    stack["services"][0]["triton"] = {"maxBatchSize": 8}
    assert spec_problems(stack) == [("services.0.triton", "only read by engine triton, but the service's engine is vllm")]


def test_duplicate_pipeline_stage_rejected(stack, spec_problems):
    stack["services"][0]["engine"] = "ray-serve"
    stage = {"name": "retrieve", "importPath": "app.stages:Retriever"}
    stack["services"][0]["pipeline"] = [stage, dict(stage)]
    assert spec_problems(stack) == [("services.0.pipeline.1.name", "duplicate pipeline stage 'retrieve'")]


@pytest.mark.parametrize("path", ["app.stages", "app stages:Retriever", ":Retriever", "app.stages:"])
def test_pipeline_import_path_must_be_module_colon_attribute(stack, spec_problems, path):
    stack["services"][0]["engine"] = "ray-serve"
    stack["services"][0]["pipeline"] = [{"name": "retrieve", "importPath": path}]
    ((where, _),) = spec_problems(stack)
    assert where == "services.0.pipeline.0.importPath"


# revisions_differ


def test_canary_identical_to_the_service_rejected(stack, spec_problems):
    stack["services"][0]["canary"] = {"weightPercent": 10}
    assert spec_problems(stack) == [
        ("services.0.canary", "differs from the service in nothing: give modelRevision or engineArgs")
    ]


def test_shadow_with_another_model_revision_accepted(stack, spec_problems):
    stack["services"][0]["shadow"] = {"mirrorPercent": 20, "modelRevision": "0e9e39f249a16976918f6564b8830bc894c89659"}
    assert spec_problems(stack) == []


def test_ray_serve_canary_of_another_model_revision_rejected(stack, spec_problems):
    stack["services"][0]["engine"] = "ray-serve"
    stack["services"][0]["canary"] = {"weightPercent": 10, "modelRevision": "0e9e39f249a16976918f6564b8830bc894c89659"}
    assert spec_problems(stack) == [
        (
            "services.0.canary.modelRevision",
            "ray-serve serves one revision per RayService; canary the engineArgs, or use a second service",
        )
    ]


@pytest.mark.parametrize("weight", [0, 100])
def test_canary_weight_must_leave_traffic_to_both(stack, spec_problems, weight):
    stack["services"][0]["canary"] = {"weightPercent": weight, "engineArgs": {"max-num-seqs": 64}}
    ((where, _),) = spec_problems(stack)
    assert where == "services.0.canary.weightPercent"


def test_hibernated_warm_pool_cannot_take_nodes_back(stack, spec_problems):
    stack["gpuPools"][0]["warmPool"] = {"size": 1, "state": "Hibernated"}
    assert spec_problems(stack) == [
        (
            "gpuPools.0.warmPool.reuseOnScaleIn",
            "must be false with state Hibernated: hibernation loses the instance store that holds a joined "
            "node's kubelet, containerd and weight cache",
        )
    ]
    stack["gpuPools"][0]["warmPool"]["reuseOnScaleIn"] = False
    assert spec_problems(stack) == []


# tracing_endpoint_needs_tracing


def test_tracing_endpoint_without_tracing_rejected(stack, spec_problems):
    stack.setdefault("observability", {})["tracingEndpoint"] = "http://tempo.tracing.svc:4317"
    assert spec_problems(stack) == [
        ("observability.tracingEndpoint", "needs tracing: true (no collector runs to forward spans)")
    ]


def test_tracing_endpoint_with_tracing_accepted(stack, spec_problems):
    stack.setdefault("observability", {}).update(tracing=True, tracingEndpoint="http://tempo.tracing.svc:4317")
    assert spec_problems(stack) == []


# deploy_gate_needs_built_images


def test_deploy_gate_without_built_images_rejected(stack, spec_problems):
    stack["deployGate"] = {"enabled": True}
    assert spec_problems(stack) == [
        ("deployGate.enabled", "needs images.build: true (the gate runs the project's gate image)")
    ]


def test_deploy_gate_with_built_images_accepted(stack, spec_problems):
    stack["deployGate"] = {"enabled": True}
    stack["images"] = {"build": True}
    assert spec_problems(stack) == []
