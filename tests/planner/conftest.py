"""Hand-made facts for planner tests, so expected values can be worked out on paper."""

import pytest

from components.catalog import Gpu
from components.planner.engine import EngineSettings
from components.planner.memory import Replica
from components.spec.models import ModelArchitecture


@pytest.fixture
def llama_8b() -> ModelArchitecture:
    return ModelArchitecture.model_validate(
        {"parameters": 8_030_261_248, "layers": 32, "hiddenSize": 4096, "intermediateSize": 14336,
         "attentionHeads": 32, "kvHeads": 8, "headDim": 128, "vocabSize": 128256, "contextLength": 131072}
    )


@pytest.fixture
def llama_70b() -> ModelArchitecture:
    return ModelArchitecture.model_validate(
        {"parameters": 70_553_706_496, "layers": 80, "hiddenSize": 8192, "intermediateSize": 28672,
         "attentionHeads": 64, "kvHeads": 8, "headDim": 128, "vocabSize": 128256, "contextLength": 131072}
    )


@pytest.fixture
def mixtral() -> ModelArchitecture:
    return ModelArchitecture.model_validate(
        {"parameters": 46_702_792_704, "activeParameters": 12_879_925_248, "layers": 32, "hiddenSize": 4096,
         "intermediateSize": 14336, "attentionHeads": 32, "kvHeads": 8, "vocabSize": 32000,
         "contextLength": 32768, "experts": 8, "activeExperts": 2}
    )


@pytest.fixture
def h100() -> Gpu:
    return Gpu.model_validate(
        {"name": "H100-SXM5-80GB", "memoryGiB": 80.0, "memoryBandwidthGBps": 3350, "interconnectGBps": 450, "interconnectSource": "test", "bf16DenseTflops": 989,
         "fp8DenseTflops": 1979, "source": "test"}
    )


@pytest.fixture
def engine() -> EngineSettings:
    return EngineSettings(gpu_memory_utilization=0.9, max_num_seqs=1024, max_num_batched_tokens=8192, kv_cache_dtype="auto")


@pytest.fixture
def replica_8b(llama_8b, h100, engine) -> Replica:
    return Replica(llama_8b, h100, "nvlink", "bfloat16", 1, 1, engine)


def _toy_catalog():
    from components.catalog.loader import AwsPrices, Catalog, CatalogModel, InstanceType

    gpu = Gpu.model_validate(
        {"name": "G80", "memoryGiB": 80.0, "memoryBandwidthGBps": 3350, "interconnectGBps": 450, "interconnectSource": "test", "bf16DenseTflops": 989,
         "fp8DenseTflops": 1979, "source": "test"}
    )
    def instance(name, gpus, price, memory, gpu_name="G80"):
        return InstanceType.model_validate(
            {"name": name, "gpu": gpu_name if gpus else None, "gpuCount": gpus, "vcpu": 8, "memoryGiB": memory,
             "efaGbps": 0, "gpuInterconnect": "nvlink" if gpus else "none", "localNvmeGB": 0, "maxPods": 110,
             "onDemandUsdPerHour": price, "spotDiscount": 0.6, "source": "test", "priceSource": "test"}
        )
    model = CatalogModel.model_validate(
        {"id": "llama-8b", "names": ["meta/llama-8b"], "source": "test", "parameters": 8_030_261_248, "layers": 32,
         "hiddenSize": 4096, "intermediateSize": 14336, "attentionHeads": 32, "kvHeads": 8, "headDim": 128,
         "vocabSize": 128256, "contextLength": 131072}
    )
    prices = AwsPrices.model_validate(
        {name: {"value": value, "source": "test"} for name, value in
         {"ebsGp3UsdPerGbMonth": 0.08, "eksClusterUsdPerHour": 0.10, "natGatewayUsdPerHour": 0.045,
          "hoursPerMonth": 730}.items()}
    )
    instances = {i.name: i for i in (instance("x8.big", 8, 10.0, 1000), instance("x1.small", 1, 2.0, 64),
                                     instance("c4.cpu", 0, 0.2, 16))}
    return Catalog({"G80": gpu}, instances, {"llama-8b": model}, prices)


@pytest.fixture
def toy_catalog():
    return _toy_catalog()


TOY_STACK = {
    "environment": "toy",
    "aws": {"region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]},
    "cluster": {"kubernetesVersion": "1.34", "systemPool": {"instanceTypes": ["c4.cpu"], "minSize": 2, "maxSize": 3}},
    "gpuPools": [
        {"name": "od", "instanceTypes": ["x8.big"], "capacityType": "onDemand", "minSize": 1, "maxSize": 4,
         "rootVolumeGiB": 100},
        {"name": "spot", "instanceTypes": ["x8.big"], "capacityType": "spot", "minSize": 0, "maxSize": 4,
         "rootVolumeGiB": 100},
    ],
    "services": [
        {"name": "chat", "engine": "vllm",
         "model": {"name": "meta/llama-8b", "uri": "s3://models-bucket/llama"},
         "pools": ["spot", "od"], "replicas": {"min": 2, "max": 40}, "maxModelLen": 8192,
         "workload": {"inputTokens": 1000, "outputTokens": 200, "peakRequestsPerSecond": 30}},
    ],
}


@pytest.fixture
def toy_spec():
    from components.spec.models import StackSpec

    return StackSpec.model_validate(TOY_STACK)
