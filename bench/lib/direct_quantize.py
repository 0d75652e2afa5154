"""The baseline for the overhead benchmark: GPTQModel called directly, nothing else.

Same settings and the same calibration rows as axera_pipeline/gptq/quantize.py; no manifest, hashing, tee or
staging. Runs in the GPTQ environment: python direct_quantize.py MODEL OUTPUT CALIB_SIZE
"""

import os
import sys

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

from axera_pipeline.gptq.datasets_io import DEFAULT_CALIB, load_rows
from axera_pipeline.gptq.model_prompts import encode_row


def main() -> None:
    model_dir, output, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from gptqmodel import GPTQModel, QuantizeConfig
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = load_rows(DEFAULT_CALIB)[: size or None]
    samples = []
    for row in rows:
        ids = encode_row(tokenizer, row, 512)
        samples.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
    config = QuantizeConfig(
        bits=4,
        group_size=128,
        sym=True,
        desc_act=False,
        damp_percent=0.01,
        true_sequential=True,
        device="cpu",
    )
    model = GPTQModel.load(model_dir, config)
    model.quantize(samples, batch_size=4, tokenizer=tokenizer, calibration_concat_size=512)
    model.save(output)


if __name__ == "__main__":
    main()
