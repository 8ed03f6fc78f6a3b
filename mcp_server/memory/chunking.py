"""Splitting retained content into memories of a size that ranks and reads well."""

from __future__ import annotations

import re

# About 300 tokens: long enough to keep a thought together, short enough that one memory is a
# precise hit and a recall's token budget holds several of them.
CHUNK_CHARS = 1_200

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str, limit: int) -> list[str]:
    """Split one paragraph into pieces under `limit`: by sentence, then by word, then hard."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(text):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def chunk_text(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Split `text` into chunks of at most `limit` characters, packing whole paragraphs first.

    Short content (the usual case: one fact, one turn of a conversation) stays one chunk.
    """
    text = text.strip()
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for paragraph in PARAGRAPH_BREAK.split(text):
        for piece in _pieces(paragraph.strip(), limit):
            if not piece:
                continue
            joined = f"{current}\n\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return [c for c in chunks if c]
