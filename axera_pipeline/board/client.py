"""Requests through the OpenAI API `axllm serve` speaks: a streamed chat completion, timed per chunk.

axllm's serve holds each text piece until the next one is decoded (src/main.cpp's pending_delta), so
the first chunk arrives one decode step after the first token. Since ax-llm PR #69 the final chunk's
`usage` carries axllm's own `ttft_ms` and `decode_tps`; they are kept when sent."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from axera_pipeline.common.cli import UserError

# LLM::GetLastError's texts, which serve streams as the answer's content with status 200
# (src/runner/LLM.cpp: context_limit_user_message and the failed-run message).
AXLLM_ERRORS = (
    "当前会话上下文已超过该模型的长度上限",
    "模型运行失败，请重新尝试",
    "检测到历史被修改",
    "KV 复用失败",
    "无法复用已有图像 KV",
)


@dataclass
class Reply:
    text: str
    first_chunk_s: float | None  # the request sent to the first piece of text
    chunk_times: list[float] = field(default_factory=list)  # seconds after the request, one per piece
    finish: str | None = None
    usage: dict = field(default_factory=dict)  # the final chunk's, where the server sends one

    @property
    def step_s(self) -> float | None:
        """The mean time between pieces: one decode step, as the stream shows it."""
        if len(self.chunk_times) < 2:
            return None
        return (self.chunk_times[-1] - self.chunk_times[0]) / (len(self.chunk_times) - 1)

    @property
    def stream_ttft_s(self) -> float | None:
        """Time to first token from the stream: the first chunk left one decode step after it."""
        if self.first_chunk_s is None:
            return None
        return max(0.0, self.first_chunk_s - (self.step_s or 0.0))

    @property
    def decode_s(self) -> float:
        return self.chunk_times[-1] - self.chunk_times[0] if len(self.chunk_times) > 1 else 0.0

    def axllm_error(self) -> str | None:
        """The answer is axllm's error text, not a translation."""
        text = self.text.strip()
        return text if any(text.startswith(marker) for marker in AXLLM_ERRORS) else None


def get_json(url: str, timeout: float = 10) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"GET {url} failed: {exc}") from None


def model_id(base: str) -> str:
    models = get_json(f"{base}/v1/models").get("data") or []
    return str(models[0]["id"]) if models else ""


def chat(base: str, model: str, messages: list[dict], max_tokens: int, timeout: float) -> Reply:
    """One greedy request: no temperature and no top_p, which axllm takes as greedy decoding."""
    body = {"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens}
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    started = time.monotonic()
    reply = Reply("", None)
    parts: list[str] = []
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if isinstance(event.get("usage"), dict):
                    reply.usage = event["usage"]
                choice = (event.get("choices") or [{}])[0]
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    now = time.monotonic() - started
                    reply.first_chunk_s = now if reply.first_chunk_s is None else reply.first_chunk_s
                    reply.chunk_times.append(now)
                    parts.append(piece)
                reply.finish = choice.get("finish_reason") or reply.finish
                if time.monotonic() - started > timeout:
                    raise TimeoutError
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            raise UserError(f"a request got no answer within {timeout:.0f} s (--request-timeout)") from None
        raise UserError(f"POST {base}/v1/chat/completions failed: {exc}") from None
    reply.text = "".join(parts)
    return reply
