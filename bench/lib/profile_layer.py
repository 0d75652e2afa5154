"""Where one decoder layer's quantize time goes, against this machine's matmul rates (GPTQ environment).

Runs the pipeline's own quantize code on MODEL_DIR with GPTQModel's phases wrapped in timers
(exclusive time, so a forward pass does not count the Hessian work its hooks do): forward passes,
Hessian accumulation (X^T X per module), the GPTQ solve, packing, offload to disk and back. Each with
its FLOPs; the machine's fp32 and bf16 matmul rates are measured in the same run.
Usage: python profile_layer.py MODEL_DIR OUT_JSON [quantize options...]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PHASES = ("forward", "hessian", "solve", "pack", "offload")


class Timers:
    """Exclusive wall time per phase: time in a nested phase is charged to that phase only."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.flops = dict.fromkeys(PHASES, 0.0)
        self.calls = dict.fromkeys(PHASES, 0)
        self.stack: list[list] = []

    def wrap(self, phase: str, fn, flops=None):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            self.stack.append([phase, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                _, nested = self.stack.pop()
                spent = time.perf_counter() - start
                self.seconds[phase] += spent - nested
                self.calls[phase] += 1
                if self.stack:
                    self.stack[-1][1] += spent
                if flops is not None:
                    self.flops[phase] += flops(*args, **kwargs)

        return timed


def matmul_rate(dtype, seconds: float = 3.0) -> float:
    """GFLOP/s of a 4096x2048 @ 2048x6144 matmul (a decoder projection's shape) on this machine."""
    import torch

    a = torch.randn(4096, 2048, dtype=dtype)
    b = torch.randn(2048, 6144, dtype=dtype)
    torch.matmul(a, b)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        runs += 1
    return 2 * 4096 * 2048 * 6144 * runs / (time.perf_counter() - start) / 1e9


def count_forward_flops(timers: Timers) -> None:
    """Charge forward FLOPs per product actually computed, not per layer call.

    GPTQModel stops a subset's forward pass once its last module has its inputs, so a layer call
    often runs only part of the layer: counting whole layers would overstate the rate several times.
    """
    import torch
    import torch.nn.functional as functional

    linear_forward = torch.nn.Linear.forward
    attention = functional.scaled_dot_product_attention

    def linear(self, input):
        timers.flops["forward"] += 2.0 * input.numel() * self.out_features
        return linear_forward(self, input)

    def sdpa(query, key, value, *args, **kwargs):
        # Q K^T and P V: 2 x 2 x batch x heads x q_len x k_len x head_dim.
        timers.flops["forward"] += 4.0 * query.numel() * key.shape[-2]
        return attention(query, key, value, *args, **kwargs)

    torch.nn.Linear.forward = linear
    functional.scaled_dot_product_attention = sdpa


def install(timers: Timers) -> None:
    import gptqmodel.utils.model as model_utils
    import gptqmodel.utils.offload as offload
    from gptqmodel.quantization.gptq import GPTQ

    def hessian_flops(self, inp):
        cols = inp.shape[-1]
        rows = inp.numel() // cols
        return 2.0 * rows * cols * cols

    def solve_flops(self, *args, **kwargs):
        cols, out = self.columns, self.rows
        return 4.0 / 3.0 * cols**3 + 1.0 * out * cols * cols

    GPTQ.process_batch = timers.wrap("hessian", GPTQ.process_batch, hessian_flops)
    GPTQ.quantize = timers.wrap("solve", GPTQ.quantize, solve_flops)
    patched = {
        "pack_module": timers.wrap("pack", model_utils.pack_module),
        "offload_to_disk": timers.wrap("offload", offload.offload_to_disk),
        "undo_offload_to_disk": timers.wrap("offload", offload.undo_offload_to_disk),
    }
    originals = {
        name: getattr(mod, name) for mod in (model_utils, offload) for name in patched if hasattr(mod, name)
    }
    for mod in [m for name, m in sys.modules.items() if name.startswith("gptqmodel") and m is not None]:
        for name, wrapped in patched.items():
            if getattr(mod, name, None) is originals.get(name):
                setattr(mod, name, wrapped)


def _weight_shapes(folder: Path) -> dict:
    shapes = {}
    for path in folder.glob("*.safetensors"):
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(length))
        shapes |= {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    return shapes


def main() -> None:
    model_dir, out_json, options = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    from axera_pipeline.common import checkpoint
    from axera_pipeline.gptq import datasets_io, quantize
    from axera_pipeline.gptq.runtime import prepare_environment

    args = quantize.parse_args(["--model", model_dir, *options])
    prepare_environment(args.model, args.calib)
    import torch

    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
    print(f"matmul: fp32 {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f} GFLOP/s", flush=True)
    timers = Timers()
    install(timers)
    count_forward_flops(timers)
    # The model's forward is reached through GPTQModel's looper; wrap each decoder layer when loaded.
    import gptqmodel

    original_load = gptqmodel.GPTQModel.load

    def load(*a, **k):
        model = original_load(*a, **k)
        for layer in model.model.model.layers:
            layer.forward = timers.wrap("forward", layer.forward)
        return model

    gptqmodel.GPTQModel.load = load
    ckpt = checkpoint.load_checkpoint(Path(model_dir))
    rows = quantize.select_rows(datasets_io.load_rows(args.calib, split=args.calib_split), args.calib_size)
    with tempfile.TemporaryDirectory(dir=Path(model_dir).parent) as stage:
        started = time.perf_counter()
        result = quantize.quantize(args, ckpt, rows, Path(stage))
        total = time.perf_counter() - started
    phases = {
        phase: {
            "seconds": round(timers.seconds[phase], 2),
            "calls": timers.calls[phase],
            "gflop": round(timers.flops[phase] / 1e9, 1),
        }
        for phase in PHASES
    }
    phases["other"] = {"seconds": round(total - sum(timers.seconds.values()), 2), "calls": 0, "gflop": 0.0}
    layers = int(ckpt.text_config["num_hidden_layers"])
    # A decoder layer's projections, the weights GPTQ quantizes (the cost scales with them).
    layer_weights = 0
    for key, shape in _weight_shapes(Path(model_dir)).items():
        if ".layers.0." in key and len(shape) == 2 and key.endswith("proj.weight"):
            layer_weights += shape[0] * shape[1]
    out_json.write_text(
        json.dumps(
            {
                "options": options,
                "layers": layers,
                "layer_weights": layer_weights,
                "calibration_tokens": result["calibration_tokens"],
                "matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
                "total_s": round(total, 2),
                "phases": phases,
                "gptq_loss_mean": result["gptq_loss"]["mean"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
