"""Requests through the OpenAI API `axllm serve` speaks: a streamed chat completion, timed per chunk."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from axera_pipeline.common.cli import UserError


@dataclass
class Reply:
    text: str
    ttft_s: float | None  # the request sent to the first piece of text
    chunk_times: list[float] = field(default_factory=list)  # seconds after the request, one per piece
    finish: str | None = None

    @property
    def decode_s(self) -> float:
        return self.chunk_times[-1] - self.chunk_times[0] if len(self.chunk_times) > 1 else 0.0


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
                choice = (json.loads(data).get("choices") or [{}])[0]
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    now = time.monotonic() - started
                    reply.ttft_s = now if reply.ttft_s is None else reply.ttft_s
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
