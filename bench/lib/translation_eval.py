"""zh->en accuracy of model variants against full precision, with 95% bootstrap intervals (bench env).

The held-out set is fixed and documented: from hsk-sentences-audio's 4,354 sentences (those with an
English translation), the first 3 are the prompt's examples and the evaluation takes every k-th after
them (k = (rows - 3) // N; N = 400 by default, 100 with --quick). None is in the pipeline's
calibration set, which is the project's own bundled data. Greedy, 3-shot, stopped at the end of the
line. Per variant: chrF and BLEU (sacrebleu) with 95% bootstrap intervals, the paired bootstrap
difference against fp (and against a baseline variant, with sacrebleu's paired test p-value),
perplexity, and KL divergence and top-1 agreement against fp on held-out text; and teacher-forced on
the N reference translations (a few thousand tokens, the task itself), the perplexity ratio and KL
against fp with 95% bootstrap intervals over sentences. fp's translations and text logits are cached,
so each variant costs one pass; for the reference statistics fp runs beside the variant (its full
distributions at every token are too large to cache).

Usage: python translation_eval.py FP_DIR OUT_JSON [--quick | --sentences N] [--baseline NAME]
       --variant NAME=fp | gptq:DIR | rtn:BITS:GROUP | emulate:DIR:PROFILE | scaled:T:DIR ... (repeatable)
       (scaled:T:DIR is not a quantization but a yardstick: fp with T times the checkpoint's weight error)
       python translation_eval.py --write-calibration EXTRA_ROWS OUT_JSONL
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
from axera_pipeline.common import atomic  # noqa: E402 (after the environment set-up)

SHOTS = 3
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "axera-llm-pipeline" / "bench"))
FORMAT = 2  # bump when prompts, selection or decoding change, so cached fp outputs are not reused
REFERENCE_FORMAT = 1  # bump when the teacher-forced reference statistics change
N_BOOTSTRAP = 1000


def hsk(n: int) -> tuple[list[dict], list[dict], int]:
    from importlib.resources import files

    data = json.loads(
        files("hsk_sentences_audio").joinpath("data/sentences.json").read_text(encoding="utf-8")
    )
    rows = [{"zh": d["chinese"], "en": d["translation"]["en"]} for d in data if d["translation"].get("en")]
    step = max(1, (len(rows) - SHOTS) // n)
    return rows[:SHOTS], rows[SHOTS::step][:n], step


def write_calibration(extra_rows: int, out: Path) -> None:
    """The bundled calibration set plus HSK rows in the same HY-MT prompt style, none from the eval set."""
    from importlib.resources import files

    from axera_pipeline.gptq.datasets_io import DEFAULT_CALIB

    data = json.loads(
        files("hsk_sentences_audio").joinpath("data/sentences.json").read_text(encoding="utf-8")
    )
    rows = [{"zh": d["chinese"], "en": d["translation"]["en"]} for d in data if d["translation"].get("en")]
    held = {r["zh"] for r in rows[:SHOTS]} | {r["zh"] for r in hsk(400)[1]} | {r["zh"] for r in hsk(100)[1]}
    free = [r for r in rows if r["zh"] not in held]
    step = max(1, len(free) // max(extra_rows, 1))
    picked = free[::step][:extra_rows]
    lines = DEFAULT_CALIB.read_text(encoding="utf-8").splitlines()
    lines += [
        json.dumps({"src": "zh", "tgt": "en", "source": r["zh"], "target": r["en"]}, ensure_ascii=False)
        for r in picked
    ]
    out.write_text("\n".join(line for line in lines if line.strip()) + "\n", encoding="utf-8")
    print(f"{out}: {len(lines)} rows ({len(picked)} from HSK, disjoint from the eval sets)")


def prompt(shots: list[dict], zh: str) -> str:
    parts = ["Translate Chinese to English."] + [f"Chinese: {s['zh']}\nEnglish: {s['en']}" for s in shots]
    return "\n\n".join(parts + [f"Chinese: {zh}\nEnglish:"])


def translate(model, tok, prompts: list[str], batch: int = 16) -> list[str]:
    import torch

    tok.padding_side = "left"
    out = []
    for i in range(0, len(prompts), batch):
        enc = tok(prompts[i : i + batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            gen = model.generate(
                **enc,
                max_new_tokens=40,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                stop_strings=["\n"],
                tokenizer=tok,
            )
        for row in gen[:, enc["input_ids"].shape[1] :]:
            out.append(tok.decode(row, skip_special_tokens=True).strip().split("\n")[0].strip())
        print(f"  {len(out)}/{len(prompts)}", flush=True)
    return out


def text_logits(model, ids_list) -> list:
    import torch

    with torch.no_grad():
        return [model(input_ids=ids[None]).logits[0].float() for ids in ids_list]


def versus_fp(fp_logits: list, logits: list, ids_list: list) -> dict:
    import torch
    import torch.nn.functional as F

    kl, agree, nll, n = 0.0, 0, 0.0, 0
    for ref, test, ids in zip(fp_logits, logits, ids_list, strict=True):
        ref = ref.float()
        kl += F.kl_div(
            F.log_softmax(test, -1), F.log_softmax(ref, -1), log_target=True, reduction="sum"
        ).item()
        agree += int((ref.argmax(-1) == test.argmax(-1)).sum())
        nll += F.cross_entropy(test[:-1], ids[1:], reduction="sum").item()
        n += ref.shape[0]
    tokens = sum(len(ids) - 1 for ids in ids_list)
    return {
        "kl_vs_fp": kl / n,
        "top1_vs_fp": agree / n,
        "perplexity": float(torch.exp(torch.tensor(nll / tokens))),
    }


def bootstrap_ci95(n: int, statistic, seed: int = 12345) -> list[float]:
    """95% percentile interval of statistic(idx) over N_BOOTSTRAP resamples of n sentence indices
    (the same seed draws the same resamples, so statistics computed apart stay paired)."""
    rng = random.Random(seed)
    values = sorted(statistic([rng.randrange(n) for _ in range(n)]) for _ in range(N_BOOTSTRAP))
    return [values[int(0.025 * N_BOOTSTRAP)], values[int(0.975 * N_BOOTSTRAP) - 1]]


def paired_difference(metric, hyps: list[str], base: list[str], refs: list[str], seed: int = 12345) -> dict:
    """Bootstrap the corpus-score difference hyps - base on the same resampled sentences (95% interval)."""
    stats_h = metric._extract_corpus_statistics(hyps, [refs])
    stats_b = metric._extract_corpus_statistics(base, [refs])

    def difference(idx: list[int]) -> float:
        score_h = metric._compute_score_from_stats(_sum(stats_h, idx)).score
        return score_h - metric._compute_score_from_stats(_sum(stats_b, idx)).score

    point = metric.corpus_score(hyps, [refs]).score - metric.corpus_score(base, [refs]).score
    return {
        "delta": round(point, 2),
        "ci95": [round(float(v), 2) for v in bootstrap_ci95(len(hyps), difference, seed)],
    }


def _sum(stats: list, idx: list[int]) -> list:
    total = [0] * len(stats[0])
    for i in idx:
        for j, value in enumerate(stats[i]):
            total[j] += value
    return total


def scores(hyps: list[str], refs: list[str]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    chrf = CHRF().corpus_score(hyps, [refs], n_bootstrap=N_BOOTSTRAP)
    bleu = BLEU().corpus_score(hyps, [refs], n_bootstrap=N_BOOTSTRAP)
    return {
        "chrf": round(chrf.score, 2),
        "chrf_ci95": [round(float(chrf._mean - chrf._ci), 2), round(float(chrf._mean + chrf._ci), 2)],
        "bleu": round(bleu.score, 2),
        "bleu_ci95": [round(float(bleu._mean - bleu._ci), 2), round(float(bleu._mean + bleu._ci), 2)],
    }


def load_variant(spec: str, fp_dir: str):
    import torch
    from transformers import AutoModelForCausalLM

    kind, _, rest = spec.partition(":")
    if kind == "fp":
        return AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
    if kind == "rtn":
        from axera_pipeline.gptq import compare

        bits, group = (int(x) for x in rest.split(":"))
        model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
        compare.apply_rtn(model, bits, group)
        return model
    if kind == "scaled":
        from gptq_tensors import scale_error

        t, gptq_dir = rest.split(":", 1)
        model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
        scale_error(model, Path(gptq_dir), float(t))
        return model
    from gptqmodel import BACKEND, GPTQModel

    if kind == "gptq":
        return GPTQModel.load(rest, device="cpu", backend=BACKEND.TORCH).model.eval()
    if kind == "emulate":
        from axera_pipeline.gptq import chip_numerics

        gptq_dir, profile = rest.rsplit(":", 1)
        dense = GPTQModel.load(gptq_dir, device="cpu", backend=BACKEND.TORCH).model.eval()
        chip_numerics.dequantize_in_place(dense)
        return chip_numerics.emulate(dense, chip_numerics.load(profile)[1])
    raise SystemExit(f"unknown variant {spec!r}")


def variant_key(spec: str, fp_dir: str, n: int) -> str:
    """What a variant's outputs depend on: fp, its spec, and for a checkpoint its manifest."""
    h = hashlib.sha256(f"{FORMAT}:{n}:{spec}:{fp_cache(fp_dir, n).name}".encode())
    kind, _, rest = spec.partition(":")
    if kind in ("gptq", "emulate", "scaled"):
        checkpoint = rest
        if kind == "emulate":
            checkpoint = rest.rsplit(":", 1)[0]
        elif kind == "scaled":
            checkpoint = rest.split(":", 1)[1]
        h.update((Path(checkpoint) / "manifest.json").read_bytes())
        if kind == "emulate":
            h.update(Path(rest.rsplit(":", 1)[1]).read_bytes() if rest.endswith(".yaml") else rest.encode())
    return h.hexdigest()[:16]


def measure_variant(
    name, spec, fp_dir, tok, prompts, ids_list, fp_logits, n, references
) -> tuple[list[str], dict, float, list]:
    """A variant's translations, its figures against fp, and its per-sentence reference statistics;
    each part is reused while the checkpoint is unchanged."""
    key = variant_key(spec, fp_dir, n)
    cached = CACHE / "variant-outputs" / f"{key}.json"
    cached_ref = CACHE / "variant-outputs" / f"{key}-references-{REFERENCE_FORMAT}.json"
    model = None
    if cached.is_file():
        print(f"{name}: outputs cached", flush=True)
        data = json.loads(cached.read_text())
    else:
        print(name, flush=True)
        started = time.monotonic()
        model = load_variant(spec, fp_dir)
        hyps = translate(model, tok, prompts)
        vs_fp = versus_fp([lg.float() for lg in fp_logits], text_logits(model, ids_list), ids_list)
        data = {"hyps": hyps, "vs_fp": vs_fp, "seconds": round(time.monotonic() - started, 1)}
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Atomic: an interrupted run must not leave half a JSON that the next run would trust.
        atomic.write_text(cached, json.dumps(data, ensure_ascii=False))
    if cached_ref.is_file():
        stats = json.loads(cached_ref.read_text())
    else:
        print(f"{name}: reference translations, teacher-forced against fp", flush=True)
        model = model if model is not None else load_variant(spec, fp_dir)
        stats = reference_stats(model, fp_model(fp_dir), references)
        atomic.write_text(cached_ref, json.dumps(stats))
    del model
    return data["hyps"], data["vs_fp"], data["seconds"], stats


@functools.cache
def fp_model(fp_dir: str):
    """fp, loaded once per run: the reference statistics need its full distribution at every token,
    too large to cache (vocabulary x tokens)."""
    return load_variant("fp", fp_dir)


def reference_ids(tok, shots: list[dict], rows: list[dict]) -> list[tuple[list[int], int]]:
    """Each held-out sentence's prompt followed by its reference translation, and where the reference
    starts (the prompt and the reference are tokenized apart, so every model scores the same tokens)."""
    items = []
    for row in rows:
        head = tok(prompt(shots, row["zh"]))["input_ids"]
        tail = tok(" " + row["en"], add_special_tokens=False)["input_ids"]
        items.append((head + tail, len(head)))
    return items


def reference_logprobs(model, items: list[tuple[list[int], int]], batch: int = 16):
    """Per sentence, the model's log-probabilities over its reference tokens ([tokens, vocabulary],
    float32) and those tokens, in order; batched with right padding."""
    import torch
    import torch.nn.functional as F

    for first in range(0, len(items), batch):
        chunk = items[first : first + batch]
        width = max(len(ids) for ids, _ in chunk)
        # Right padding: under causal attention no real token sees the padding after it.
        x = torch.tensor([ids + [0] * (width - len(ids)) for ids, _ in chunk])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk])
        # Logits only from the earliest reference position on: the vocabulary projection of the
        # prompts' positions would be most of the work.
        first_kept = min(start for _, start in chunk) - 1
        # no_grad around the call only, never across a yield: two of these generators interleaved
        # (reference_stats zips them) would otherwise leave gradients off for the caller.
        with torch.no_grad():
            logits = model(input_ids=x, attention_mask=mask, logits_to_keep=width - first_kept).logits
        for row, (ids, start) in enumerate(chunk):
            yield (
                F.log_softmax(logits[row, start - 1 - first_kept : len(ids) - 1 - first_kept].float(), -1),
                x[row, start : len(ids)],
            )


def sentence_stats(test, ref, target) -> list[float]:
    """One sentence's row: the variant's and fp's summed negative log-likelihood, summed
    KL(fp || variant), top-1 agreements with fp, and the token count."""
    import torch.nn.functional as F

    return [
        -float(test.gather(1, target[:, None]).sum()),
        -float(ref.gather(1, target[:, None]).sum()),
        float(F.kl_div(test, ref, log_target=True, reduction="sum")),
        int((test.argmax(-1) == ref.argmax(-1)).sum()),
        len(target),
    ]


def reference_stats(model, fp, items: list[tuple[list[int], int]], batch: int = 16) -> list[list[float]]:
    """Per sentence, the variant against fp on its reference tokens (rows of sentence_stats)."""
    pairs = zip(reference_logprobs(model, items, batch), reference_logprobs(fp, items, batch), strict=True)
    stats = []
    for (test, target), (ref, _) in pairs:
        stats.append(sentence_stats(test, ref, target))
        if len(stats) % batch == 0 or len(stats) == len(items):
            print(f"  {len(stats)}/{len(items)}", flush=True)
    return stats


def paired_reference_kl(stats: list[list[float]], base: list[list[float]], seed: int = 12345) -> dict:
    """KL per reference token minus the baseline's, bootstrapped over the same resampled sentences."""

    def kl(rows: list[list[float]], idx: list[int]) -> float:
        return sum(rows[i][2] for i in idx) / sum(rows[i][4] for i in idx)

    everything = list(range(len(stats)))
    return {
        "delta": kl(stats, everything) - kl(base, everything),
        "ci95": bootstrap_ci95(len(stats), lambda idx: kl(stats, idx) - kl(base, idx), seed),
    }


def reference_summary(stats: list[list[float]], seed: int = 12345) -> dict:
    """Perplexity ratio to fp, KL and top-1 on the reference translations, with 95% bootstrap
    intervals over sentences (the ratio is paired: both models on the same resampled sentences)."""
    import math

    def figures(rows: list[list[float]]) -> tuple[float, float]:
        nll, nll_fp, kl, _, n = (sum(col) for col in zip(*rows, strict=True))
        return math.exp((nll - nll_fp) / n), kl / n

    def resampled(which: int):
        return lambda idx: figures([stats[i] for i in idx])[which]

    ratio, kl = figures(stats)
    tokens = sum(s[4] for s in stats)
    return {
        "ref_tokens": tokens,
        "ref_ppl_fp": math.exp(sum(s[1] for s in stats) / tokens),
        "ref_ppl_ratio": ratio,
        "ref_ppl_ratio_ci95": bootstrap_ci95(len(stats), resampled(0), seed),
        "ref_kl": kl,
        "ref_kl_ci95": bootstrap_ci95(len(stats), resampled(1), seed),
        "ref_top1": sum(s[3] for s in stats) / tokens,
    }


def fp_cache(fp_dir: str, n: int) -> Path:
    h = hashlib.sha256(f"{FORMAT}:{n}".encode())
    for path in sorted(Path(fp_dir).glob("*.safetensors")):
        h.update(path.read_bytes()[: 1 << 20] + str(path.stat().st_size).encode())
    return CACHE / "fp-outputs" / h.hexdigest()[:16]


def main() -> None:
    import torch
    from transformers import AutoTokenizer

    from axera_pipeline.gptq import compare

    if sys.argv[1:2] == ["--write-calibration"]:
        write_calibration(int(sys.argv[2]), Path(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fp_dir")
    p.add_argument("out")
    p.add_argument("--sentences", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="100 sentences, for iterating")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SPEC")
    p.add_argument("--baseline", help="variant the others are compared with besides fp (paired test)")
    args = p.parse_args()
    n = 100 if args.quick else args.sentences
    shots, rows, step = hsk(n)
    tok = AutoTokenizer.from_pretrained(args.fp_dir)
    prompts = [prompt(shots, r["zh"]) for r in rows]
    refs = [r["en"] for r in rows]
    text = [ln for ln in (ROOT / "data/eval/heldout_text.txt").read_text().splitlines() if ln.strip()]
    ids_list = compare.encode_text(tok, text, 512)
    references = reference_ids(tok, shots, rows)

    cache = fp_cache(args.fp_dir, n)
    if (cache / "translations.json").is_file():
        fp_hyps = json.loads((cache / "translations.json").read_text())
        fp_logits = torch.load(cache / "logits.pt")
        fp_seconds = json.loads((cache / "seconds.json").read_text())
    else:
        print("fp (cached for the next variants)", flush=True)
        started = time.monotonic()
        model = load_variant("fp", args.fp_dir)
        fp_hyps = translate(model, tok, prompts)
        fp_logits = [lg.half() for lg in text_logits(model, ids_list)]
        fp_seconds = round(time.monotonic() - started, 1)
        del model
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(fp_logits, cache / "logits.pt")
        (cache / "seconds.json").write_text(json.dumps(fp_seconds))
        (cache / "translations.json").write_text(json.dumps(fp_hyps, ensure_ascii=False))

    from sacrebleu.metrics import CHRF

    results: dict[str, dict] = {}
    hyps_by_name: dict[str, list[str]] = {}
    stats_by_name: dict[str, list] = {}
    for item in ["fp=fp", *args.variant]:
        name, _, spec = item.partition("=")
        if name == "fp":
            hyps, seconds = fp_hyps, fp_seconds
            vs_fp = versus_fp([lg.float() for lg in fp_logits], [lg.float() for lg in fp_logits], ids_list)
        else:
            hyps, vs_fp, seconds, stats = measure_variant(
                name, spec, args.fp_dir, tok, prompts, ids_list, fp_logits, n, references
            )
            vs_fp = {**vs_fp, **reference_summary(stats)}
            stats_by_name[name] = stats
        hyps_by_name[name] = hyps
        results[name] = {
            "spec": spec,
            **scores(hyps, refs),
            **vs_fp,
            "seconds": seconds,
            "examples": hyps[:3],
        }
        if name != "fp":
            results[name]["chrf_vs_fp"] = paired_difference(CHRF(), hyps, fp_hyps, refs)
        if args.baseline and name not in ("fp", args.baseline) and args.baseline in hyps_by_name:
            results[name]["chrf_vs_baseline"] = paired_difference(
                CHRF(), hyps, hyps_by_name[args.baseline], refs
            )
            results[name]["ref_kl_vs_baseline"] = paired_reference_kl(stats, stats_by_name[args.baseline])
        print(json.dumps({name: {k: v for k, v in results[name].items() if k != "examples"}}), flush=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "sentences": len(rows),
                "selection": f"hsk-sentences-audio rows with an English translation: rows 0-2 are the "
                f"prompt's examples, then every {step}th row from row 3",
                "shots": SHOTS,
                "bootstrap": N_BOOTSTRAP,
                "baseline": args.baseline,
                "results": results,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
