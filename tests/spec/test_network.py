"""plan_subnets: how a VPC CIDR is cut into one private and one public subnet per AZ."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.spec.network import SubnetPlan, SubnetPlanError, plan_subnets


def test_three_azs_in_a_slash_16():
    assert plan_subnets("10.0.0.0/16", 3) == SubnetPlan(
        private=("10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"),
        public=("10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20"),
    )


def test_two_azs_in_a_slash_16():
    # 2 AZs + 1 spare need 4 blocks (/18); the spare 10.0.128.0/18 is halved into /19s
    assert plan_subnets("10.0.0.0/16", 2) == SubnetPlan(
        private=("10.0.0.0/18", "10.0.64.0/18"),
        public=("10.0.128.0/19", "10.0.160.0/19"),
    )


def test_four_azs_in_a_slash_16():
    # 4 AZs + 1 spare need 8 blocks (/19); the spare 10.0.128.0/19 is quartered into /21s
    assert plan_subnets("10.0.0.0/16", 4) == SubnetPlan(
        private=("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19", "10.0.96.0/19"),
        public=("10.0.128.0/21", "10.0.136.0/21", "10.0.144.0/21", "10.0.152.0/21"),
    )


def test_three_azs_in_the_smallest_cidr_that_fits():
    assert plan_subnets("192.168.4.0/22", 3) == SubnetPlan(
        private=("192.168.4.0/24", "192.168.5.0/24", "192.168.6.0/24"),
        public=("192.168.7.0/26", "192.168.7.64/26", "192.168.7.128/26"),
    )


def test_one_az_uses_half_for_private_and_half_for_public():
    assert plan_subnets("10.1.0.0/16", 1) == SubnetPlan(private=("10.1.0.0/17",), public=("10.1.128.0/17",))


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.1/16", "not a valid IPv4 CIDR: 10.0.0.1/16 has host bits set"),
        ("10.0.0.0", None),  # a bare address is a /32: out of range, not a parse error
        ("fd00::/56", "not a valid IPv4 CIDR: Expected 4 octets in 'fd00::'"),
        ("10.0.0.0/12", "AWS allows VPC CIDRs from /16 to /28, got /12"),
        ("10.0.0.0/29", "AWS allows VPC CIDRs from /16 to /28, got /29"),
    ],
)
def test_invalid_or_out_of_range_cidr_rejected(cidr, message):
    with pytest.raises(SubnetPlanError) as raised:
        plan_subnets(cidr, 2)
    assert str(raised.value) == (message or "AWS allows VPC CIDRs from /16 to /28, got /32")


@pytest.mark.parametrize(
    ("az_count", "too_small", "message"),
    [
        (
            2,
            "10.0.0.0/23",
            "/23 is too small for 2 AZs: private subnets would be /25 (need /24 or larger) "
            "and public /26 (need /27 or larger); use /22 or larger",
        ),
        (
            3,
            "10.0.0.0/23",
            "/23 is too small for 3 AZs: private subnets would be /25 (need /24 or larger) "
            "and public /27 (need /27 or larger); use /22 or larger",
        ),
        (
            4,
            "10.0.0.0/22",
            "/22 is too small for 4 AZs: private subnets would be /25 (need /24 or larger) "
            "and public /27 (need /27 or larger); use /21 or larger",
        ),
        (
            6,
            "10.0.0.0/28",
            "/28 is too small for 6 AZs: private subnets would be /31 (need /24 or larger) "
            "and public /34 (need /27 or larger); use /21 or larger",
        ),
    ],
)
def test_too_small_cidr_rejected_with_the_suggested_prefix(az_count, too_small, message):
    with pytest.raises(SubnetPlanError) as raised:
        plan_subnets(too_small, az_count)
    assert str(raised.value) == message


@pytest.mark.parametrize("az_count", [2, 3, 4, 5, 6, 7, 8])
def test_suggested_prefix_is_the_smallest_that_fits(az_count):
    with pytest.raises(SubnetPlanError) as raised:
        plan_subnets("10.0.0.0/28", az_count)
    suggested = int(str(raised.value).rsplit("use /", 1)[1].split(" ")[0])
    plan = plan_subnets(f"10.0.0.0/{suggested}", az_count)
    assert len(plan.private) == az_count
    with pytest.raises(SubnetPlanError):
        plan_subnets(f"10.0.0.0/{suggested + 1}", az_count)


def _assert_sound(vpc_cidr: str, az_count: int, plan: SubnetPlan) -> None:
    vpc = ipaddress.IPv4Network(vpc_cidr)
    private = [ipaddress.IPv4Network(c) for c in plan.private]
    public = [ipaddress.IPv4Network(c) for c in plan.public]
    assert len(private) == len(public) == az_count
    subnets = private + public
    for subnet in subnets:
        assert subnet.subnet_of(vpc)
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    assert len({s.prefixlen for s in private}) == 1
    assert len({s.prefixlen for s in public}) == 1
    assert private[0].prefixlen <= 24
    assert public[0].prefixlen <= 27
    assert private[0].num_addresses >= public[0].num_addresses


@pytest.mark.parametrize("az_count", [1, 2, 3, 4, 5, 6])
def test_subnets_are_inside_the_vpc_and_do_not_overlap(az_count):
    _assert_sound("10.0.0.0/16", az_count, plan_subnets("10.0.0.0/16", az_count))


@settings(max_examples=150, deadline=None)
@given(
    address=st.integers(min_value=0, max_value=2**32 - 1),
    prefix=st.integers(min_value=16, max_value=28),
    az_count=st.integers(min_value=1, max_value=16),
)
def test_any_plan_is_inside_the_vpc_and_non_overlapping_or_refused(address, prefix, az_count):
    vpc = ipaddress.IPv4Network((address, prefix), strict=False)
    try:
        plan = plan_subnets(str(vpc), az_count)
    except SubnetPlanError as error:
        assert f"/{prefix} is too small for {az_count} AZs" in str(error)
        return
    _assert_sound(str(vpc), az_count, plan)
