"""Build a tiny random-weight causal LM with a real BPE tokenizer, fully offline.

Runs inside the GPTQ environment (it needs torch, transformers and tokenizers).
Usage: python make_tiny_model.py OUT_DIR [--model-type hunyuan_v1_dense|llama] [--layers N] [--hy-mt]

--hy-mt makes an HY-MT-like model: HY-MT1.5's special tokens (its fullwidth markers, pad and EOS), its
chat template (tests/fixtures/models/HY-MT1.5-1.8B) and HunYuan-dense's pre-tokenizer (the regexes
llama.cpp's llama-vocab.cpp gives for it), on the same kind of tiny byte-level BPE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# HY-MT's own markers and layout (what axllm's HunYuan template renders), and plain ChatML for the llama
# model (what axllm's SmolLM2 template renders): the board and verify then prompt alike.
HUNYUAN_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}<｜hy_place▁holder▁no▁3｜>"
    "{% elif m['role'] == 'user' %}<｜hy_User｜>{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}<｜hy_Assistant｜>{{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<｜hy_Assistant｜>{% else %}<｜hy_place▁holder▁no▁8｜>{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# pad, bos, eos, unk first (ids 0-3, as the configs say), then the template's markers.
SPECIALS = {
    "hunyuan_v1_dense": [
        "<pad>",
        "<｜hy_begin▁of▁sentence｜>",
        "<｜hy_place▁holder▁no▁2｜>",
        "<unk>",
        "<｜hy_User｜>",
        "<｜hy_Assistant｜>",
        "<｜hy_place▁holder▁no▁3｜>",
        "<｜hy_place▁holder▁no▁8｜>",
    ],
    "llama": ["<pad>", "<s>", "<|im_end|>", "<unk>", "<|im_start|>"],
}
TEMPLATES = {"hunyuan_v1_dense": HUNYUAN_TEMPLATE, "llama": CHATML_TEMPLATE}
ROOT = Path(__file__).resolve().parents[2]
HY_MT = ROOT / "tests" / "fixtures" / "models" / "HY-MT1.5-1.8B"
# HY-MT1.5's pad, BOS, EOS (the end of an answer) and unknown, then the template's markers.
HY_MT_SPECIALS = ["<｜hy_▁pad▁｜>", *SPECIALS["hunyuan_v1_dense"][1:]]  # HY-MT's own pad token
# HunYuan-dense's pre-tokenizer: digits in threes, CJK and kana runs, then words and punctuation.
HUNYUAN_DENSE_SPLITS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]


def corpus(repo: Path) -> list[str]:
    """Text to train the tokenizer on: the project's own bundled data, every language in it."""
    lines: list[str] = []
    for path in sorted((repo / "data").rglob("*")):
        if path.suffix == ".jsonl":
            for row in path.read_text(encoding="utf-8").splitlines():
                if row.strip():
                    lines.extend(str(v) for v in json.loads(row).values())
        elif path.suffix == ".txt":
            lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


def build_tokenizer(lines: list[str], vocab_size: int, model_type: str, hy_mt: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = HY_MT_SPECIALS if hy_mt else SPECIALS[model_type]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    if hy_mt:
        splits = [pre_tokenizers.Split(Regex(r), "isolated") for r in HUNYUAN_DENSE_SPLITS]
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    pad, bos, eos, unk, *markers = specials
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        additional_special_tokens=markers,
    )
    if hy_mt:
        fast.chat_template = json.loads((HY_MT / "tokenizer_config.json").read_text(encoding="utf-8"))[
            "chat_template"
        ]
    else:
        fast.chat_template = TEMPLATES[model_type]
    return fast


def build_model(
    model_type: str,
    vocab: int,
    layers: int,
    hidden: int,
    inter: int,
    seed: int,
    head_dim: int = 64,
    kv_heads: int | None = None,
):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    heads = hidden // head_dim
    common = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or max(1, heads // 2),
        head_dim=head_dim,
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    if model_type == "hunyuan_v1_dense":
        common.update(use_qk_norm=True, eod_token_id=2)
    config = AutoConfig.for_model(model_type, **common)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Initialise with a scale that keeps activations well-conditioned, so logits carry signal.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, (0.6 if "embed" not in name else 3.0) / p.shape[1] ** 0.5)
    return model.to(torch.bfloat16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model-type", default="hunyuan_v1_dense")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--intermediate", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--kv-heads", type=int, help="default: half the attention heads")
    parser.add_argument("--model-vocab", type=int, help="model vocab size (default: the tokenizer's)")
    parser.add_argument("--hy-mt", action="store_true", help="HY-MT1.5's markers, template, pre-tokenizer")
    args = parser.parse_args()

    tokenizer = build_tokenizer(corpus(ROOT), args.vocab, args.model_type, args.hy_mt)
    model = build_model(
        args.model_type,
        args.model_vocab or len(tokenizer),
        args.layers,
        args.hidden,
        args.intermediate,
        args.seed,
        args.head_dim,
        args.kv_heads,
    )
    model.generation_config.do_sample = False
    model.generation_config.max_new_tokens = 16
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"tiny {args.model_type} model written to {args.out}")


if __name__ == "__main__":
    main()
