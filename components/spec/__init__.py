"""The typed stack spec: models, the YAML loader with line numbers, and the spec-only rules."""

from components.spec.loader import SpecSource, read_spec
from components.spec.models import ModelArchitecture, ServiceSpec, StackSpec
from components.spec.problems import LocatedProblem, Problem, StackError

__all__ = [
    "LocatedProblem",
    "ModelArchitecture",
    "Problem",
    "ServiceSpec",
    "SpecSource",
    "StackError",
    "StackSpec",
    "read_spec",
]
