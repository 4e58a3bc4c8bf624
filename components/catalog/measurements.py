"""Published throughput measurements: the evidence the planner's efficiency factors are fitted to."""

from __future__ import annotations

import functools
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.catalog.loader import DATA_DIR


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)

    id: str
    model: str
    gpu: str
    dtype: Literal["bfloat16", "float16", "fp8", "int8", "int4"]
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    tensor_parallel_size: int = Field(ge=1)
    pipeline_parallel_size: int = Field(ge=1)
    replicas: int = Field(ge=1)
    engine: str
    input_tokens: int = Field(gt=0)
    output_tokens: int = Field(gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    output_tokens_per_second: float = Field(gt=0)
    source: str = Field(min_length=1)
    source_detail: str = Field(min_length=1)


@functools.cache
def load_measurements() -> tuple[Measurement, ...]:
    raw = yaml.safe_load((DATA_DIR / "throughput_measurements.yaml").read_text(encoding="utf-8"))
    return tuple(Measurement.model_validate(row) for row in raw["measurements"])
