"""Talking to a deployed model server: `inferfleet smoke` (is it up and answering?) and
`inferfleet bench` (how fast, and does it meet the service's SLO?).

Nothing here imports Pulumi: the statistics, the SSE parser and the SLO comparison are pure and
unit-tested; the network parts use aiohttp (OpenAI-compatible HTTP) and tritonclient (KServe v2 gRPC).
"""
