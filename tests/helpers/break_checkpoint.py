"""Zero every GPTQ scale in a checkpoint: a deliberately broken quantization for the verify tests.

Runs inside the GPTQ environment. Usage: python break_checkpoint.py CHECKPOINT_DIR
"""

import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    folder = Path(sys.argv[1])
    for path in folder.glob("*.safetensors"):
        tensors = load_file(path)
        zeroed = [name for name in tensors if name.endswith(".scales")]
        for name in zeroed:
            tensors[name] = tensors[name].zero_()
        save_file(tensors, path, metadata={"format": "pt"})
        print(f"zeroed {len(zeroed)} scale tensors in {path.name}")


if __name__ == "__main__":
    main()
