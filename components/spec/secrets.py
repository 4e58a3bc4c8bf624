"""Credentials typed into a stack spec: found, refused, and never echoed back.

A stack file is committed, and its free-form values (engineArgs, a stage's env, tags) are rendered in
plain text: into container args and env, the RayService, `resources.json` and the deploy gate's
ConfigMap. The credentials the program needs are Pulumi secret config of the workloads stack
(README "Deploying for real", docs/deploying.md), which become Kubernetes Secrets. This module is pure:
detectors for credential-shaped strings, for engine flags and environment variable names that carry
credentials, `redact` for messages, and the spec rule `no_secrets_in_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.spec.models import StackSpec
    from components.spec.problems import Problem

REDACTED = "[redacted]"

HF_TOKEN_CONFIG = "huggingFaceToken"
SLACK_WEBHOOK_CONFIG = "alertSlackWebhookUrl"
"""Secret config keys of the workloads stack (components/kubernetes/serving.py HF_TOKEN_CONFIG and
components/manifests/alerting.py); repeated here because the spec layer imports nothing above it."""


@dataclass(frozen=True)
class Detector:
    """One shape of credential: what it is called in messages, its pattern, and how `redact` rewrites it."""

    kind: str
    pattern: re.Pattern[str]
    replacement: str = REDACTED


_EDGE = r"(?<![A-Za-z0-9_-])"
"""Not inside a longer word: `risk-...` holds no `sk-` key, `my_ghp_...` no GitHub token."""

DETECTORS: tuple[Detector, ...] = (
    # hf_ + 34 letters (Hugging Face user access tokens); 30+ to allow for older and future lengths.
    Detector("a Hugging Face token", re.compile(_EDGE + r"hf_[A-Za-z0-9]{30,}")),
    # OpenAI (sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...) and Anthropic (sk-ant-...) keys: random
    # text, so at least one digit, one capital and one small letter (`sk-learn-pipeline` is no key).
    Detector(
        "an API key (sk-...)",
        re.compile(_EDGE + r"sk-(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{20,}"),
    ),
    # AWS access key ids: AKIA (long-term) or ASIA (temporary) + 16 upper-case letters and digits.
    Detector("an AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    # GitHub: ghp_ (classic), gho_/ghu_/ghs_/ghr_ (OAuth, user-to-server, server-to-server, refresh), github_pat_.
    Detector("a GitHub token", re.compile(_EDGE + r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    Detector(
        "a Slack webhook URL",
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]+"),
    ),
    Detector("a Slack token", re.compile(_EDGE + r"xox[abeoprs]-[A-Za-z0-9-]{10,}")),
    Detector("a Google API key", re.compile(_EDGE + r"AIza[A-Za-z0-9_-]{35}")),
    Detector("a Stripe secret key", re.compile(_EDGE + r"(?:sk|rk)_live_[A-Za-z0-9]{16,}")),
    # A PEM private key block; in a message (a repr) its body runs to the END line or the closing quote.
    Detector(
        "a private key",
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[^'\"]*)", re.S),
    ),
    # JWT: base64url of '{"' starts both header and payload with eyJ; the signature may be empty (alg none).
    Detector("a JSON Web Token", re.compile(_EDGE + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    # scheme://user:password@host: the user info goes, the rest of the URL stays readable.
    Detector(
        "a URL with a password",
        re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://)[^\s/:@'\"]+:[^\s/@'\"]+@"),
        r"\1" + REDACTED + "@",
    ),
)


_ANY = re.compile("|".join(f"(?:{detector.pattern.pattern})" for detector in DETECTORS), re.S)
"""Every detector at once: most text holds no credential, and one search says so."""


def credential_kind(text: str) -> str | None:
    """What credential `text` holds somewhere (`a Hugging Face token`), or None."""
    if not _ANY.search(text):
        return None
    for detector in DETECTORS:
        if detector.pattern.search(text):
            return detector.kind
    return None


def redact(text: str) -> str:
    """`text` with every credential-shaped part replaced by `[redacted]`."""
    if not _ANY.search(text):
        return text
    for detector in DETECTORS:
        text = detector.pattern.sub(detector.replacement, text)
    return text


SECRET_ENGINE_FLAGS = {
    "hf-token": HF_TOKEN_CONFIG,
    "api-key": None,
}
"""vLLM's options (components/catalog/data/vllm_options.json, 0.32.0) that take a credential as their value:
--hf-token (the Hugging Face token) and --api-key (keys the OpenAI server accepts). A test keeps this list
equal to the options `secret_engine_flag` matches."""
_SECRET_WORDS = frozenset({"token", "key", "apikey", "secret", "password", "passwd", "credential"})


def secret_engine_flag(flag: str, value: Any = None) -> bool:
    """An engine flag (dashed, without `--`) whose value would be a credential: vLLM's --hf-token and
    --api-key, and any flag whose name ends in token, key, secret or password given text (not
    --max-num-batched-tokens, --long-prefill-token-threshold, --ssl-keyfile, --allow-credentials: counts, a
    path and a switch; nor a misspelt `max-num-batched-token: 4096`, which vLLM's option list answers)."""
    flag = flag.replace("_", "-").lower().removeprefix("--")
    if flag in SECRET_ENGINE_FLAGS:
        return True
    return flag.rsplit("-", 1)[-1] in _SECRET_WORDS and (value is None or isinstance(value, str))


_SECRET_ENV_NAME = re.compile(
    r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
_HF_ENV_NAMES = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "HUGGINGFACEHUB_API_TOKEN"})


def secret_env_name(name: str) -> bool:
    """An environment variable conventionally holding a secret: *_TOKEN, *_SECRET, *_PASSWORD, *_API_KEY,
    *_ACCESS_KEY, *_PRIVATE_KEY, *_CREDENTIALS (not HF_TOKEN_PATH or *_MAX_TOKENS)."""
    return bool(_SECRET_ENV_NAME.search(name))


def secret_key(key: Any) -> bool:
    """A key whose value is a credential, whatever it looks like: a secret engine flag or env variable name."""
    return isinstance(key, str) and (secret_env_name(key) or secret_engine_flag(key))


def remedy(environment: str, *, hugging_face: bool = False, slack: bool = False, aws: bool = False) -> str:
    """Where the credential belongs instead."""
    workloads = f"{environment}-workloads"
    if hugging_face:
        return (
            f"give it to the workloads stack as secret config instead: `pulumi config set -s {workloads} --secret "
            f"{HF_TOKEN_CONFIG} hf_...` (docs/deploying.md); every engine reads it from a Kubernetes Secret"
        )
    if slack:
        return (
            f"give it to the workloads stack as secret config instead: `pulumi config set -s {workloads} --secret "
            f"{SLACK_WEBHOOK_CONFIG} ...` with observability.alerting.slackChannel (docs/deploying.md)"
        )
    where = "pods reach AWS through the IAM roles the program gives them" if aws else (
        f"the program's credentials are secret config of the {workloads} stack (docs/deploying.md)"
    )
    return (
        "a stack file is committed and rendered in plain text (pod args and env, resources.json, the deploy "
        f"gate's ConfigMap), so it holds no credentials: {where}"
    )


def _value_remedy(kind: str, environment: str) -> str:
    return remedy(
        environment,
        hugging_face=kind == "a Hugging Face token",
        slack=kind == "a Slack webhook URL",
        aws=kind == "an AWS access key id",
    )


def no_secrets_in_spec(spec: StackSpec) -> Iterator[Problem]:
    """Refuse credential-carrying engine flags and env names, and credential-shaped keys and values anywhere."""
    from components.spec.problems import Problem  # problems.py imports `redact` from here

    env = spec.environment
    reported: set[tuple[Any, ...]] = set()
    for s, service in enumerate(spec.services):
        for revision, engine_args in service.engine_args_by_revision():
            prefix = ("services", s, *([revision] if revision else []), "engineArgs")
            for key, value in engine_args.items():
                if secret_engine_flag(key, value):
                    hugging_face = key.replace("_", "-").lower() == "hf-token"
                    reported.add((*prefix, key))
                    yield Problem(
                        (*prefix, key),
                        f"--{key.replace('_', '-')} takes a credential, which would be in plain text in the "
                        f"serving pods' args; {remedy(env, hugging_face=hugging_face)}",
                    )
        for p, stage in enumerate(service.pipeline):
            for name in stage.env:
                if secret_env_name(name):
                    path = ("services", s, "pipeline", p, "env", name)
                    reported.add(path)
                    yield Problem(
                        path,
                        f"{name} names a secret, which would be in plain text in the RayService; "
                        f"{remedy(env, hugging_face=name.upper() in _HF_ENV_NAMES)}",
                    )
    for path, text, is_key in _strings(spec.model_dump(by_alias=True, exclude_unset=True), ()):
        kind = credential_kind(text)
        if kind is None or path in reported:
            continue
        reported.add(path)
        what = "key" if is_key else "value"
        yield Problem(path, f"this {what} looks like {kind}; {_value_remedy(kind, env)}")


def _strings(data: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str, bool]]:
    """(path, text, is a key) of every string in plain data, keys included."""
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*path, key)
            if isinstance(key, str):
                yield child, key, True
            yield from _strings(value, child)
    elif isinstance(data, (list, tuple)):
        for index, item in enumerate(data):
            yield from _strings(item, (*path, index))
    elif isinstance(data, str):
        yield path, data, False
