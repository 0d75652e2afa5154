#!/usr/bin/env bash
# Here (with network to PyPI): the wheels the GPU machine lacks, into .whl/ (git-ignored locally).
# GPTQModel publishes an sdist only; it is built into a wheel for the GPU machine's Python 3.12.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
lock=envs/gptq-torch2.9.lock
pin() { grep -E "^$1==" "$lock" | head -n 1 | cut -d' ' -f1; }
# GPTQModel as the GPTQ environment built it from its sdist (py3-none-any: the check uses its torch
# backend, no compiled kernels), from uv's cache; else built here.
version=$(pin gptqmodel | cut -d= -f3)
built=$(find "$(uv cache dir)" -name "gptqmodel-$version-py3-none-any.whl" 2>/dev/null | head -n 1)
if [ -n "$built" ]; then
  cp "$built" .whl/
else
  BUILD_CUDA_EXT=0 python3 -m pip wheel --no-deps -w .whl "gptqmodel==$version"
fi
for name in defuser device-smi logbar pypcre tokenicer transformers; do
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$(pin "$name")" || python3 -m pip download --no-deps -d .whl "$(pin "$name")"
done
ls -l .whl
