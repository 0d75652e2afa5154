"""Read pulsar2's output as it streams and judge a build by its marker, its files and how it ended."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

from axera_pipeline.toolchain.backends import licence

DONE_MARKER = "build llm model done!"
CHECK_DONE = "check llm model done!"
# The toolchain image has transformers but not gptqmodel, so its post-build check of a GPTQ
# checkpoint always ends with this, after the model files are complete.
KNOWN_IMPORT_ERROR = re.compile(r"ImportError: Loading a GPTQ quantized model requires gptqmodel")
# An exception's final line ("ValueError: ..."), a loguru ERROR line, or the shell's "Killed".
_ERROR = re.compile(r"^([\w.]*(Error|Exception)\b:?.*|.*\|\s*(ERROR|CRITICAL)\s*\|.*|.*\bKilled\b.*)")
_LAYERS = re.compile(r"building llm decode layers\D*(\d+)/(\d+)")


@dataclass
class BuildLog:
    """Facts gathered from the output, line by line."""

    done: bool = False
    check_done: bool = False
    layers: tuple[int, int] | None = None
    errors_before: list[str] = field(default_factory=list)
    errors_after: list[str] = field(default_factory=list)
    known_import_error: bool = False
    licence_missing: bool = False

    def feed(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        if DONE_MARKER in text:
            self.done = True
            return
        if CHECK_DONE in text:
            self.check_done = True
        if licence.MISSING_MARKER in text:
            self.licence_missing = True
        if m := _LAYERS.search(text):
            self.layers = (int(m.group(1)), int(m.group(2)))
        if KNOWN_IMPORT_ERROR.search(text) and self.done:
            self.known_import_error = True
            return
        if _ERROR.match(text):
            (self.errors_after if self.done else self.errors_before).append(text)


@dataclass
class Verdict:
    ok: bool
    message: str


def signal_of(returncode: int) -> int | None:
    """A kill by signal: negative for a direct child, 128+N through a shell or `docker run`."""
    if returncode < 0:
        return -returncode
    if returncode in (128 + signal.SIGKILL, 128 + signal.SIGTERM):
        return returncode - 128
    return None


def judge(returncode: int, log: BuildLog, missing: list[str], parallel: int) -> Verdict:
    killed = signal_of(returncode)
    if killed is not None and not log.done:
        name = signal.Signals(killed).name
        return Verdict(
            False,
            f"pulsar2 was killed by {name} before finishing (probably out of memory); "
            f"retry with a lower --parallel than {parallel}",
        )
    if not log.done and log.licence_missing:
        return Verdict(
            False,
            f"pulsar2 found no licence ({licence.MISSING_MARKER}): "
            "set PULSAR2_LICENSE to your .v2c file or the folder holding it",
        )
    if not log.done:
        last = log.errors_before[-1] if log.errors_before else f"exit status {returncode}, no error line"
        return Verdict(False, f"pulsar2 failed before `{DONE_MARKER}`: {last}")
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return Verdict(
            False, f"pulsar2 printed `{DONE_MARKER}` but {len(missing)} expected file(s) are missing: {shown}"
        )
    if returncode == 0:
        return Verdict(True, "build complete")
    if log.known_import_error and not log.errors_after:
        return Verdict(
            True,
            "build complete; pulsar2's own check could not load the GPTQ checkpoint "
            "(its image has no gptqmodel, a known limitation): run `nox -s verify` "
            "for accuracy",
        )
    last = log.errors_after[-1] if log.errors_after else f"exit status {returncode}"
    return Verdict(False, f"pulsar2 built the model but its check failed: {last}")
