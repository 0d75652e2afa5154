#!/usr/bin/env bash
# On the GPU machine, from the repository root: quantize a tiny model on CUDA, then
# `verify --emulate ax650 --device cuda`; one JSON object of figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TORCH_COMPILE_DISABLE=1
work=${GPU_CHECK_DIR:-/tmp/gpu-check}
rm -rf "$work" && mkdir -p "$work"
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0))'
python3 tests/helpers/make_tiny_model.py "$work/tiny" >/dev/null
start=$(date +%s.%N)
python3 -m axera_pipeline.gptq.quantize --model "$work/tiny" --output "$work/q4" --device cuda
mid=$(date +%s.%N)
python3 -m axera_pipeline.gptq.verify --reference "$work/tiny" --quantized "$work/q4" --emulate ax650 \
  --device cuda --output "$work/verify" --threshold 'chrf_vs_reference_model>=5' --threshold 'top1_agreement>=0.5'
end=$(date +%s.%N)
python3 tests/helpers/check_emulation.py "$work/q4" > "$work/emulation.json"
python3 - "$work" "$start" "$mid" "$end" <<'PY'
import json, os, sys
from pathlib import Path
work, start, mid, end = Path(sys.argv[1]), *map(float, sys.argv[2:])
report = json.loads((work / "verify" / "verify.json").read_text())
res = report["results"]
out = {
    "device": res["device"],
    "bf16_arithmetic": res["bf16_arithmetic"],
    "quantize_s": round(mid - start, 1),
    "verify_s": round(end - mid, 1),
    "emulated": res["emulated"],
    "passed": report["passed"],
    "emulation_check": json.loads((work / "emulation.json").read_text()),
}
print(json.dumps(out, indent=2))
if os.environ.get("OUT"):
    Path(os.environ["OUT"], "gpu.json").write_text(json.dumps(out, indent=2))
PY
