"""What axllm's log says: CMM left per loaded layer, time to first token and decode rate per request,
and why it died, in the words Axera's issues use (docs/board.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Newer builds: `HH:MM:SS.mmm INF Run:<line> | ttft: 173.71 ms`; older: `[I][ Run][ 627]: ttft: 173.71 ms`.
TTFT = re.compile(r"ttft:\s*([\d.]+)\s*ms")
DECODE = re.compile(r"hit eos,\s*(?:decode )?avg\s*([\d.]+)\s*token/s")
REMAIN = re.compile(r"init (\d+|post) axmodel ok,(?:devid\(\d+\) )?remain_cmm\((-?\d+) MB\)")
ERROR = re.compile(r"(?:^\S+ ERR |\[E\])\s*(?:\S+\s*\|\s*|\[[^\]]*\]\[\s*\d+\]:\s*)?(.*)")
OVERRIDE = "OpenAI chat request:"
# The causes the notes and Axera's issues name, by the line that shows them.
CAUSES = (
    ("create_tokenizer(", "axllm does not know this tokenizer_type: set another with --axllm-tokenizer-type"),
    ("tokenizer.init(", "axllm cannot read tokenizer.txt"),
    ("tokens_embed_size mismatch", "the embedding table's width does not match the layers' input"),
    ("AX_ENGINE_CreateHandle", "the board ran out of CMM (ax-llm issue #21)"),
    ("Port ", "the port is taken on the board: pass another --port"),
)


@dataclass
class Log:
    remain_cmm: list[tuple[str, int]] = field(default_factory=list)  # (layer or "post", MB left)
    ttft_ms: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    request_override: bool = False  # the build logs each request's sampling: it honours greedy requests

    @property
    def cmm_left_mb(self) -> int | None:
        return self.remain_cmm[-1][1] if self.remain_cmm else None

    @property
    def cmm_used_mb(self) -> int | None:
        """From the first loaded layer to the post model, plus one layer's average for the first."""
        if len(self.remain_cmm) < 2:
            return None
        first, last = self.remain_cmm[0][1], self.remain_cmm[-1][1]
        return round((first - last) * len(self.remain_cmm) / (len(self.remain_cmm) - 1))

    def cause(self) -> str:
        """The last error line, and its cause where the notes know it."""
        for line in reversed(self.errors):
            for marker, cause in CAUSES:
                if marker in line:
                    return f"{line} ({cause})"
        return self.errors[-1] if self.errors else ""


def parse(text: str) -> Log:
    log = Log()
    for raw in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw).split("\r")[-1]
        if m := REMAIN.search(line):
            log.remain_cmm.append((m.group(1), int(m.group(2))))
        if m := TTFT.search(line):
            log.ttft_ms.append(float(m.group(1)))
        if m := DECODE.search(line):
            log.decode_tps.append(float(m.group(1)))
        if OVERRIDE in line:
            log.request_override = True
        if (" ERR " in line or "[E]" in line) and (m := ERROR.match(line.strip())):
            log.errors.append(m.group(1).strip())
    return log
