"""Read the pieces of a SentencePiece `tokenizer.model` (a ModelProto) with the standard library.

Only what tokenizer.txt needs: ModelProto field 1 (repeated SentencePiece: 1 piece, 2 score, 3 type).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.common.cli import UserError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    kind: int = NORMAL


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes):
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, wire, value


def parse(data: bytes) -> list[Piece]:
    pieces = []
    for number, wire, value in fields(data):
        if number != 1 or wire != 2:
            continue
        text, score, kind = "", 0.0, NORMAL
        for sub, sub_wire, sub_value in fields(value):
            if sub == 1 and sub_wire == 2:
                text = sub_value.decode("utf-8")
            elif sub == 2 and sub_wire == 5:
                score = struct.unpack("<f", sub_value)[0]
            elif sub == 3 and sub_wire == 0:
                kind = sub_value
        pieces.append(Piece(text, score, kind))
    return pieces


def read_pieces(path: Path) -> list[Piece]:
    try:
        pieces = parse(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a SentencePiece model: {exc}") from None
    if not pieces:
        raise UserError(f"{path} holds no SentencePiece pieces")
    return pieces
