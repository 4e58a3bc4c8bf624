"""`make local`: the serving path of one stack service on this machine, with real parts.

A real vLLM (its CPU build, in .venv-vllm) serves a tiny random model with the arguments the manifests
generate for the service, mapped to CPU by `vllm_cpu.cpu_args`; a real Prometheus scrapes it with the
labels the PodMonitor adds and evaluates the service's generated PrometheusRule. The e2e tests start
their servers with the same pieces, so what `make local` shows is what the tests check.
"""
