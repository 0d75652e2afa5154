"""zh->en translation quality and perplexity of fp, GPTQ and round-to-nearest gemma-3-270m (bench env).

3-shot prompts on held-out HSK sentences (never used for calibration: the pipeline calibrates on its
own bundled set); greedy decoding, batched. Usage: FP_DIR GPTQ_DIR OUT_JSON N_SENTENCES
"""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
SHOTS = 3


def hsk_split(n: int) -> tuple[list[dict], list[dict]]:
    from importlib.resources import files

    data = json.loads(
        files("hsk_sentences_audio").joinpath("data/sentences.json").read_text(encoding="utf-8")
    )
    rows = [{"zh": d["chinese"], "en": d["translation"]["en"]} for d in data if d["translation"].get("en")]
    shots = rows[:SHOTS]
    step = max(1, (len(rows) - SHOTS) // n)
    return shots, rows[SHOTS::step][:n]


def prompt(shots: list[dict], zh: str) -> str:
    parts = ["Translate Chinese to English."] + [f"Chinese: {s['zh']}\nEnglish: {s['en']}" for s in shots]
    return "\n\n".join(parts + [f"Chinese: {zh}\nEnglish:"])


def translate(model, tok, prompts: list[str], batch: int = 8) -> list[str]:
    import torch

    tok.padding_side = "left"
    out = []
    for i in range(0, len(prompts), batch):
        enc = tok(prompts[i : i + batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id)
        for row in gen[:, enc["input_ids"].shape[1] :]:
            out.append(tok.decode(row, skip_special_tokens=True).strip().split("\n")[0].strip())
        print(f"  {len(out)}/{len(prompts)}", flush=True)
    return out


def evaluate(label, model, tok, prompts, refs, text_ids) -> dict:
    import sacrebleu

    from axera_pipeline.gptq import compare

    started = time.monotonic()
    hyps = translate(model, tok, prompts)
    ppl = compare.perplexity(model, text_ids, "cpu")
    return {
        "model": label,
        "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
        "bleu": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
        "perplexity": round(ppl, 3),
        "seconds": round(time.monotonic() - started, 1),
        "examples": hyps[:3],
    }


def main() -> None:
    fp_dir, gptq_dir, out, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    import torch
    from gptqmodel import BACKEND, GPTQModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axera_pipeline.gptq import compare

    shots, rows = hsk_split(n)
    tok = AutoTokenizer.from_pretrained(fp_dir)
    prompts = [prompt(shots, r["zh"]) for r in rows]
    refs = [r["en"] for r in rows]
    english = [ln for ln in (ROOT / "data/eval/heldout_text.txt").read_text().splitlines()[:6] if ln.strip()]
    text_ids = compare.encode_text(tok, english, 512)
    results = []
    model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
    print("fp", flush=True)
    results.append(evaluate("fp32 (reference)", model, tok, prompts, refs, text_ids))
    qc = json.loads((Path(gptq_dir) / "config.json").read_text())["quantization_config"]
    compare.apply_rtn(model, qc["bits"], qc["group_size"])
    print("rtn", flush=True)
    results.append(evaluate(f"RTN int{qc['bits']} g{qc['group_size']}", model, tok, prompts, refs, text_ids))
    del model
    gm = GPTQModel.load(gptq_dir, device="cpu", backend=BACKEND.TORCH)
    print("gptq", flush=True)
    results.append(
        evaluate(
            f"GPTQ int{qc['bits']} g{qc['group_size']} (pipeline)",
            gm.model.eval(),
            tok,
            prompts,
            refs,
            text_ids,
        )
    )
    out.write_text(
        json.dumps({"sentences": len(rows), "shots": SHOTS, "results": results}, indent=2, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
