"""Credentials typed into a stack: the detectors, the rule that refuses them, and messages that never echo them."""

from __future__ import annotations

import json

import pytest

from components.catalog.vllm_options import DATA_FILE
from components.spec.problems import LocatedProblem, Problem, dotted
from components.spec.secrets import (
    REDACTED,
    SECRET_ENGINE_FLAGS,
    credential_kind,
    redact,
    secret_engine_flag,
    secret_env_name,
)

# Shaped like real credentials and made up here; each is assembled from pieces so that no secret scanner
# (GitHub push protection, gitleaks) mistakes this file for a leak.
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
OPENAI = "sk-" + "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKl"
OPENAI_PROJECT = "sk-" + "proj-" + "Ab3dEf_GhIjKl-MnOpQrStUvWx"
ANTHROPIC = "sk-" + "ant-api03-" + "Ab3dEfGhIjKlMnOpQrStUvWx"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documentation example
AWS_TEMP = "ASIA" + "ABCDEFGHIJKLMNOP"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK_WEBHOOK = "https://hooks.slack.com/" + "services/" + "T00000000/B00000000/" + "X" * 24
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp"
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA " + "PRIVATE KEY-----"
JWT = "eyJhbGciOiJIUzI1NiJ9" + "." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0" + "." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
URL_WITH_PASSWORD = "postgres://" + "admin:hunter2" + "@db.internal:5432/app"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (HF, "a Hugging Face token"),
        (f"--hf-token={HF}", "a Hugging Face token"),
        (OPENAI, "an API key (sk-...)"),
        (OPENAI_PROJECT, "an API key (sk-...)"),
        (ANTHROPIC, "an API key (sk-...)"),
        (AWS_KEY, "an AWS access key id"),
        (AWS_TEMP, "an AWS access key id"),
        (GITHUB, "a GitHub token"),
        (GITHUB_PAT, "a GitHub token"),
        (SLACK_WEBHOOK, "a Slack webhook URL"),
        (SLACK_TOKEN, "a Slack token"),
        (PRIVATE_KEY, "a private key"),
        ("-----BEGIN OPENSSH " + "PRIVATE KEY-----", "a private key"),
        (JWT, "a JSON Web Token"),
        (URL_WITH_PASSWORD, "a URL with a password"),
        (json.dumps({"token": HF}), "a Hugging Face token"),
    ],
)
def test_credentials_are_detected(text, kind):
    assert credential_kind(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "meta-llama/Llama-3.1-8B-Instruct",
        "acme/keyword-extractor-v2",
        "acme/api-key-detector",
        "sk-learn-pipeline-for-classification",  # no digit, no capital: a name, not a key
        "risk-Model-2024-abcdefghijklmnopqrstu",  # `sk-` inside a word
        "hf_transfer",
        "s3://inferfleet-prod-models/meta-llama/Llama-3.1-70B-Instruct",
        "https://hooks.example.com/services/a/b",
        "https://example.com/path?query=1",
        "http://tempo.tracing.svc:4317",
        "s3://inferfleet-state/pulumi?region=us-east-1",
        "0123456789abcdef0123456789abcdef01234567",  # a model revision (commit)
        "AKIA-style names such as AKIAX are fine",
        "eyJhbGciOiJIUzI1NiJ9",  # a JWT header alone
        "#ml-alerts",
        "fp8_e4m3",
        "inferfleet_serve.stages:Retriever",
        "-----BEGIN PUBLIC KEY-----",
        "",
    ],
)
def test_ordinary_values_are_not_credentials(text):
    assert credential_kind(text) is None
    assert redact(text) == text


def test_redact_replaces_each_credential_and_keeps_the_rest():
    message = f"got {HF!r} and {SLACK_WEBHOOK} then {URL_WITH_PASSWORD}"
    assert redact(message) == f"got '{REDACTED}' and {REDACTED} then postgres://{REDACTED}@db.internal:5432/app"


def test_redact_removes_a_private_key_body_in_a_repr():
    assert redact(f"got {PRIVATE_KEY!r}") == f"got '{REDACTED}'"
    assert redact("got '-----BEGIN " + "PRIVATE KEY-----\\nMIIE...' here") == f"got '{REDACTED}' here"


@pytest.mark.parametrize("flag", ["hf-token", "hf_token", "api-key", "api_key", "--api-key", "client-secret", "db-password"])
def test_credential_flags(flag):
    assert secret_engine_flag(flag)


@pytest.mark.parametrize(
    "flag",
    [
        "max-num-batched-tokens",
        "long-prefill-token-threshold",
        "dbo-decode-token-threshold",
        "return-tokens-as-token-ids",
        "tokenizer",
        "ssl-keyfile",
        "allow-credentials",
        "kv-cache-dtype",
        "hf-overrides",
        "enable-prefix-caching",
    ],
)
def test_flags_that_only_mention_tokens_or_keys_are_not_credentials(flag):
    assert not secret_engine_flag(flag)


def test_a_flag_ending_in_token_with_a_number_is_a_misspelt_count_not_a_credential():
    assert not secret_engine_flag("max-num-batched-token", 4096)
    assert secret_engine_flag("max-num-batched-token", "4096")
    assert secret_engine_flag("hf-token", 1)  # vLLM's credential flags, whatever the value


def test_credential_flags_of_the_pinned_vllm_are_exactly_hf_token_and_api_key():
    """A vLLM bump that adds a credential flag shows here (and is refused by the rule already)."""
    options = json.loads(DATA_FILE.read_text())["options"]
    assert sorted(flag[2:] for flag in options if secret_engine_flag(flag)) == sorted(SECRET_ENGINE_FLAGS)


@pytest.mark.parametrize(
    "name",
    ["HF_TOKEN", "OPENAI_API_KEY", "DB_PASSWORD", "CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "token", "APIKEY"],
)
def test_secret_env_names(name):
    assert secret_env_name(name)


@pytest.mark.parametrize(
    "name", ["HF_TOKEN_PATH", "INFERFLEET_CORPUS", "MAX_TOKENS", "INFERFLEET_TOP_K", "KEY_PREFIX", "TOKENIZER", "SECRETS_DIR"]
)
def test_ordinary_env_names(name):
    assert not secret_env_name(name)


# Messages never echo a credential


def test_problem_messages_and_paths_are_redacted():
    problem = Problem(("tags", HF), f"{HF!r} is not allowed")
    assert problem.message == f"'{REDACTED}' is not allowed"
    assert problem.path == ("tags", HF)  # the real key, so the line can be found
    assert dotted(problem.path) == f"tags.{REDACTED}"
    assert str(LocatedProblem("dev.yaml", 3, problem.path, problem.message)) == (
        f"dev.yaml:3: tags.{REDACTED}: '{REDACTED}' is not allowed"
    )


def test_a_rule_echoing_a_value_does_not_echo_a_credential(stack, spec_problems):
    stack["aws"]["availabilityZones"][0] = AWS_KEY
    problems = spec_problems(stack)
    assert any(
        path == "aws.availabilityZones.0" and message.startswith(f"'{REDACTED}' is not an AZ")
        for path, message in problems
    )
    assert all(AWS_KEY not in message for _, message in problems)


def test_a_type_error_does_not_echo_a_credential(stack, spec_problems):
    stack["services"][0]["model"]["dtype"] = SLACK_WEBHOOK[:55]  # short enough to be echoed
    problems = spec_problems(stack)
    assert problems and all("hooks.slack.com/services" not in message for _, message in problems)


def test_a_type_error_under_a_secret_name_does_not_echo_the_value(write_stack, tmp_path):
    import yaml
    from pathlib import Path

    from components.spec import StackError, read_spec

    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    rag = next(s for s in raw["services"] if s["name"] == "rag")
    rag["pipeline"][0]["env"] = {"DB_PASSWORD": 12345678}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(StackError) as raised:
        read_spec(path)
    [problem] = raised.value.problems
    assert problem.message == "should be a valid string"


# The rule: no_secrets_in_spec


def _remedy_hf(env: str = "dev") -> str:
    return (
        f"give it to the workloads stack as secret config instead: `pulumi config set -s {env}-workloads --secret "
        "huggingFaceToken hf_...` (docs/deploying.md); every engine reads it from a Kubernetes Secret"
    )


def test_credential_engine_flags_are_refused_whatever_their_value(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"hf-token": "not-even-a-token", "api_key": "abc"}
    problems = dict(spec_problems(stack))
    assert problems["services.0.engineArgs.hf-token"] == (
        "--hf-token takes a credential, which would be in plain text in the serving pods' args; " + _remedy_hf()
    )
    assert problems["services.0.engineArgs.api_key"].startswith("--api-key takes a credential")
    assert "no credentials" in problems["services.0.engineArgs.api_key"]


def test_credential_flag_in_a_canary_is_refused(stack, spec_problems):
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"hf-token": HF}}
    [(path, message)] = spec_problems(stack)
    assert path == "services.0.canary.engineArgs.hf-token"
    assert HF not in message


def test_token_shaped_values_are_refused_anywhere(stack, spec_problems):
    stack["tags"]["alerts"] = SLACK_WEBHOOK
    stack["services"][0]["engineArgs"] = {"hf-overrides": json.dumps({"token": HF}), "served-model-nam": "x"}
    stack["services"][0]["model"]["revision"] = GITHUB
    problems = dict(spec_problems(stack))
    assert problems["tags.alerts"] == (
        "this value looks like a Slack webhook URL; give it to the workloads stack as secret config instead: "
        "`pulumi config set -s dev-workloads --secret alertSlackWebhookUrl ...` with "
        "observability.alerting.slackChannel (docs/deploying.md)"
    )
    assert problems["services.0.engineArgs.hf-overrides"] == "this value looks like a Hugging Face token; " + _remedy_hf()
    assert problems["services.0.model.revision"].startswith("this value looks like a GitHub token; a stack file is committed")


def test_a_credential_as_a_key_is_refused_and_not_printed(stack, spec_problems):
    stack["tags"][AWS_KEY] = "x"
    [(path, message)] = spec_problems(stack)
    assert path == f"tags.{REDACTED}"
    assert message.startswith("this key looks like an AWS access key id; ")
    assert "IAM roles" in message


def test_stage_env_secret_names_and_values_are_refused(tmp_path):
    import yaml
    from pathlib import Path

    from components.spec import StackError, read_spec

    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    rag = next(s for s in raw["services"] if s["name"] == "rag")
    index = raw["services"].index(rag)
    rag["pipeline"][0]["env"] = {"HF_TOKEN": HF, "OPENAI_API_KEY": "x", "INFERFLEET_CORPUS": OPENAI, "TOP_K": "5"}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(StackError) as raised:
        read_spec(path)
    problems = {dotted(p.path): p.message for p in raised.value.problems}
    env = f"services.{index}.pipeline.0.env"
    assert set(problems) == {f"{env}.HF_TOKEN", f"{env}.OPENAI_API_KEY", f"{env}.INFERFLEET_CORPUS"}
    assert problems[f"{env}.HF_TOKEN"] == (
        "HF_TOKEN names a secret, which would be in plain text in the RayService; " + _remedy_hf("prod")
    )
    assert problems[f"{env}.OPENAI_API_KEY"].startswith("OPENAI_API_KEY names a secret")
    assert problems[f"{env}.INFERFLEET_CORPUS"].startswith("this value looks like an API key (sk-...)")
    assert all(HF not in p and OPENAI not in p for p in map(str, raised.value.problems))


def test_model_names_with_key_or_token_in_them_are_fine(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"tokenizer": "acme/keyword-tokenizer", "max-num-batched-tokens": 8192}
    stack["tags"]["keyOwner"] = "https://wiki.example.com/ml-platform"
    assert spec_problems(stack) == []
