"""Write a tiny random-weight Llama with its own BPE tokenizer and chat template into a directory.

Run with .venv-vllm's python (it needs torch, transformers and tokenizers; the main venv never imports it):

    .venv-vllm/bin/python components/local/tiny_model.py OUT_DIR

No model can be downloaded here, yet a real vLLM server needs a real checkpoint: this one has
the layout of a Hugging Face Llama (config.json, safetensors, tokenizer files, chat template)
and is small enough to load in seconds on 2 CPU cores; `make local` and the e2e tests serve it. Its
head dim is 64 because vLLM's CPU attention refuses very small head dims (16). Weights are seeded, so
greedy output is repeatable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HIDDEN_SIZE = 256
ATTENTION_HEADS = 4
KV_HEADS = 2
LAYERS = 2
HEAD_DIM = HIDDEN_SIZE // ATTENTION_HEADS  # 64
INTERMEDIATE_SIZE = 512
MAX_POSITIONS = 2048
SEED = 0

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# A few lines are enough for a BPE with every character the tests send (the rest map to <unk>).
TRAINING_TEXT = [
    "Hello! How are you today? I am a tiny test model served by vLLM on a CPU.",
    "The quick brown fox jumps over the lazy dog, 0123456789 times.",
    "Large language models serve chat completions and plain completions over HTTP.",
    "Kubernetes scales the deployment when requests are waiting in the queue.",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
    "A chat turn ends with a newline:\nthe next one starts on its own line.\n",
]

# Roles as special tokens, each turn closed by EOS, so generation stops the way a real chat model's does.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer() -> PreTrainedTokenizerFast:
    """BPE with a metaspace pre-tokenizer: every token decodes to printable text, spaces included."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=[UNK, BOS, EOS, *ROLE_TOKENS], show_progress=False)
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
    )


def write_tiny_model(out: Path) -> None:
    """Save tokenizer and bf16 model into `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=ATTENTION_HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    torch.set_default_dtype(torch.bfloat16)  # created in the dtype the server runs it in
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model into")
    write_tiny_model(parser.parse_args().out)


if __name__ == "__main__":
    main()
