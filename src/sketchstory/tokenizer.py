"""A real CLIP BPE tokenizer built offline from the merges file bundled in ``sketchstory/data``.

SD1.5 uses OpenAI's CLIP BPE (49,408 tokens). The hub copy may be unreachable, so the package
ships OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (as distributed with open_clip, MIT licence);
HF's ``CLIPTokenizer`` needs it as ``vocab.json`` + ``merges.txt``, which this module writes once.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from transformers import CLIPTokenizer, PreTrainedTokenizerBase

from sketchstory.atomic import atomic_write_text
from sketchstory.story import Story

# open_clip keeps the first 49152-256-2 merges; the vocabulary is bytes, bytes+'</w>', merges, specials.
_N_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def write_clip_vocab(folder: Path) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` for CLIP's BPE into ``folder`` and return it."""
    bpe = resources.files("sketchstory.data").joinpath("bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")[1 : _N_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    vocab = list(_bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "vocab.json", json.dumps({t: i for i, t in enumerate(vocab)}))
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder


def _cache_dir() -> Path:
    return Path.home() / ".cache" / "sketchstory" / "clip-bpe"


@lru_cache(maxsize=1)
def clip_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """OpenAI CLIP's tokenizer (SD1.5's), built from the vocabulary bundled with open-clip-torch."""
    folder = _cache_dir()
    if not (folder / "merges.txt").exists():
        write_clip_vocab(folder)
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=max_length, pad_token="<|endoftext|>")


def long_prompts(story: Story, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """A warning for every text longer than the text encoder reads (CLIP: 77 tokens).

    Such texts are truncated, as diffusers does: the warning names the panel, the token count and
    the last words that are still read. A panel's text includes its characters' descriptions and the style.
    """
    limit = tokenizer.model_max_length
    texts = [(f"panels[{n}].prompt", story.full_prompt(n)) for n in range(len(story.panels))]
    texts.append(("negative_prompt", story.negative_prompt))
    warnings = []
    for (where, text), ids in zip(texts, tokenizer([t for _, t in texts], verbose=False).input_ids, strict=True):
        if len(ids) > limit:
            kept = tokenizer.batch_decode([ids[1 : limit - 1]])[0].split()  # without the start and end tokens
            warnings.append(f"{where}: {len(ids)} CLIP tokens (with character descriptions and style), more than "
                            f"the {limit} the text encoder reads; it is truncated after \"...{' '.join(kept[-4:])}\": "
                            "shorten it to keep the rest")
    return warnings
