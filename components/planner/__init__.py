"""Capacity and cost planning: pure functions from a validated spec and the catalog to a plan."""

from components.planner.checks import check_catalog_facts
from components.planner.plan import StackPlan, plan_stack

__all__ = ["StackPlan", "check_catalog_facts", "plan_stack"]
