"""CLIP scoring: batched text and image encoding, cached, and cosine similarities."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.errors import ModelNotAvailableError
from arpo.tools.devices import clip_dtype_name, resolve_device
from arpo.tools.loading import hub_offline, model_load_error
from arpo.tools.tokens import CLIP_CONTEXT, hf_length, split_to_fit

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

# dtype -> open_clip precision: mixed half precision (LayerNorm stays float32), as CLIP runs
_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


class ClipScorer:
    """An open_clip model that scores prompts and images against a reference.

    Embeddings are L2-normalised, so every similarity is a cosine in [-1, 1]. Text embeddings
    are cached by text (an LRU), image embeddings by a caller-given key (an artifact hash),
    so a reference is encoded once per process.

    A text longer than the model's context (``context_length`` tokens, 77 for CLIP) is not
    truncated: it is scored in chunks (:meth:`chunks`), so the score sees every token a long
    text encoder (T5) reads; a text that fits is embedded exactly as before.
    """

    def __init__(
        self,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        *,
        name: str,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 50_000,
        input_dtype: Any = None,
    ) -> None:
        self.model = model.eval().to(device)
        # the dtype images are fed in (open_clip's half precision keeps LayerNorm in float32)
        self.input_dtype = input_dtype
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self._texts: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._images: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()

    @classmethod
    def from_pretrained(
        cls,
        model_name: str,
        pretrained: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
    ) -> ClipScorer:
        """Load an open_clip model: a built-in architecture with a pretrained tag or checkpoint
        file, ``local-dir:/path`` (config + weights) or ``hf-hub:org/repo``; in ``dtype``
        (ARPO_CLIP_DTYPE; ``auto``: float16 on CUDA, float32 on the CPU and MPS). Embeddings
        and similarities are float32 whatever the model's dtype."""
        check_clip_ref(model_name, pretrained)
        import open_clip
        import torch

        device = resolve_device(device)
        chosen = clip_dtype_name(device, dtype)
        precision = _PRECISION[chosen]
        is_schema = model_name.startswith(("local-dir:", "hf-hub:"))
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=None if is_schema else pretrained,
                device=device,
                precision=precision,
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as error:  # open_clip raises RuntimeError, OSError, ValueError...
            ref = model_name if is_schema else f"{model_name}/{pretrained}"
            raise model_load_error(
                "CLIP model", ref, "ARPO_CLIP_MODEL/ARPO_CLIP_PRETRAINED", error
            ) from error
        name = model_name if is_schema else f"{model_name}/{pretrained}"
        log.info("loaded CLIP %s on %s (%s)", name, device, chosen)
        return cls(
            model,
            preprocess,
            tokenizer,
            name=name,
            device=device,
            input_dtype=None if chosen == "float32" else getattr(torch, chosen),
        )

    @property
    def context_length(self) -> int:
        """Tokens the text tower reads, its start and end markers included."""
        return int(getattr(self.tokenizer, "context_length", None) or CLIP_CONTEXT)

    @cached_property
    def _token_length(self) -> Callable[[str], int] | None:
        """Tokens the scorer's tokenizer makes of a text, markers included, untruncated: open_clip's
        BPE tokenizer (``encode``) or a wrapped Hugging Face one (``tokenizer``); None for a
        tokenizer it cannot ask (texts are then never chunked)."""
        tokenizer = self.tokenizer
        hf = getattr(tokenizer, "tokenizer", None)
        if hf is not None and callable(hf):
            clean = getattr(tokenizer, "clean_fn", None) or (lambda text: text)
            return lambda text: hf_length(hf, clean(text))
        encode = getattr(tokenizer, "encode", None)
        if encode is not None and hasattr(tokenizer, "sot_token_id"):
            return lambda text: len(encode(text)) + 2
        return None

    @cached_property
    def _markers(self) -> int:
        length = self._token_length
        return 0 if length is None else length("")

    def token_count(self, text: str) -> int | None:
        """Prompt tokens of ``text`` as this scorer's tokenizer counts them (markers not
        counted); None when the tokenizer cannot be asked."""
        length = self._token_length
        return None if length is None else length(text) - self._markers

    def chunks(self, text: str) -> list[tuple[str, int]]:
        """The pieces ``text`` is scored in, with their token counts: the text itself when it
        fits the context, else consecutive phrases and sentences packed into pieces that
        each fit (:func:`~arpo.tools.tokens.split_to_fit`)."""
        length = self._token_length
        if length is None:
            return [(text, 0)]
        whole = length(text)
        if whole <= self.context_length:
            return [(text, whole - self._markers)]
        markers = self._markers
        return split_to_fit(
            text, lambda piece: length(piece) - markers, self.context_length - markers
        )

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` the text tower cannot read: those its tokenizer maps to its unknown
        token (a word-level tokenizer's words outside its vocabulary, as with the demo CLIP,
        which reads "a cat" and "a lighthouse" alike). Empty for a tokenizer that reads any
        text (CLIP's byte-level BPE) or cannot say (no offsets)."""
        hf = getattr(self.tokenizer, "tokenizer", None)
        unknown = getattr(hf, "unk_token_id", None)
        if hf is None or unknown is None or not callable(hf):
            return []
        clean = getattr(self.tokenizer, "clean_fn", None) or (lambda piece: piece)
        cleaned = clean(text)
        try:
            encoded = hf(cleaned, add_special_tokens=False, return_offsets_mapping=True)
        except (NotImplementedError, ValueError, TypeError):  # a slow tokenizer: no offsets
            return []
        pairs = zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        return list(dict.fromkeys(cleaned[a:b] for token, (a, b) in pairs if token == unknown))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised embeddings, one row per text; only uncached texts reach the model.

        A text over the context is embedded in chunks (:meth:`chunks`): each chunk is embedded
        and normalised, the chunks are averaged weighted by their token counts, and the mean
        is normalised again. Chunks are cached like any text.
        """
        import torch

        with self._lock:
            # rows gathered locally first: storing new rows may evict ones this call needs
            found = {t: self._texts[t] for t in dict.fromkeys(texts) if t in self._texts}
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            pieces = {t: self.chunks(t) for t in missing}
            long = {t: p for t, p in pieces.items() if len(p) > 1}
            plain = [t for t in missing if t not in long]
            parts = [c for p in long.values() for c, _ in p if c not in found]
            self._embed(list(dict.fromkeys([*plain, *parts])), found)
            for text, chunks in long.items():
                weights = torch.tensor([float(max(tokens, 1)) for _, tokens in chunks])
                rows = torch.stack([found[chunk] for chunk, _ in chunks])
                mean = (weights[:, None] * rows).sum(dim=0) / weights.sum()
                found[text] = torch.nn.functional.normalize(mean, dim=-1)
            for text, row in found.items():
                self._remember(self._texts, text, row)
            rows = [found[t] for t in texts]
        return torch.stack(rows) if rows else torch.empty(0)

    def embed_uncached(self, texts: Sequence[str]) -> torch.Tensor:
        """``texts`` (each within the context) embedded by the model now, cache or not: what
        checks that stored embeddings still belong to this model."""
        import torch

        found: dict[str, torch.Tensor] = {}
        with self._lock:
            self._embed(list(dict.fromkeys(texts)), found)
        return torch.stack([found[t] for t in texts])

    def remember_texts(self, texts: Sequence[str], rows: torch.Tensor) -> None:
        """Seed the text cache with embeddings computed earlier (one row per text)."""
        with self._lock:
            for text, row in zip(texts, rows, strict=True):
                self._remember(self._texts, text, row)

    def _embed(self, texts: list[str], found: dict[str, torch.Tensor]) -> None:
        """Embed ``texts`` (each within the context) in batches into ``found``."""
        import torch

        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            tokens = self.tokenizer(chunk).to(self.device)
            with torch.inference_mode():
                features = self.model.encode_text(tokens).float()
            found.update(
                zip(chunk, torch.nn.functional.normalize(features, dim=-1).cpu(), strict=True)
            )

    def encode_images(
        self, images: Sequence[Image.Image], keys: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Normalised embeddings, one row per image; with ``keys``, cached by key."""
        import torch

        keys = list(keys) if keys is not None else [None] * len(images)  # type: ignore[list-item]
        with self._lock:
            rows = [self._images.get(key) if key is not None else None for key in keys]
            todo = [i for i, row in enumerate(rows) if row is None]
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                pixels = torch.stack([self.preprocess(images[i]) for i in chunk]).to(
                    self.device, dtype=self.input_dtype
                )
                with torch.inference_mode():
                    features = self.model.encode_image(pixels).float()
                features = torch.nn.functional.normalize(features, dim=-1).cpu()
                for i, row in zip(chunk, features, strict=True):
                    rows[i] = row
            for key, row in zip(keys, rows, strict=True):
                if key is not None:
                    self._remember(self._images, key, row)
        return torch.stack(rows) if rows else torch.empty(0)

    def encode_stored(
        self, keys: Sequence[str], load: Callable[[str], Image.Image]
    ) -> torch.Tensor:
        """Embeddings of images named by key (artifact hashes): ``load(key)`` reads only the
        images not already cached, so a reference or render is decoded and encoded once."""
        import torch

        with self._lock:
            found = {key: self._images[key] for key in dict.fromkeys(keys) if key in self._images}
            missing = [key for key in dict.fromkeys(keys) if key not in found]
            if missing:
                embedded = self.encode_images([load(key) for key in missing], keys=missing)
                found.update(zip(missing, embedded, strict=True))
            return torch.stack([found[key] for key in keys])

    def text_similarity(self, texts: Sequence[str], reference: torch.Tensor) -> list[float]:
        """Cosine similarity of each text to one reference image embedding, in one batch."""
        if not texts:
            return []
        return (self.encode_texts(texts) @ reference).tolist()

    def image_similarity(self, embeddings: torch.Tensor, reference: torch.Tensor) -> list[float]:
        return (embeddings @ reference).tolist()

    def _remember(self, cache: OrderedDict[str, torch.Tensor], key: str, row: torch.Tensor) -> None:
        cache[key] = row
        cache.move_to_end(key)
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def check_clip_ref(model_name: str, pretrained: str | None) -> None:
    """Fail fast, naming the setting, before open_clip tries (and retries) a download.

    Local folders and ``hf-hub:`` ids are checked without importing open_clip (which takes
    seconds); a built-in architecture's pretrained tag needs open_clip's tables.
    """
    if model_name.startswith("local-dir:"):
        _check_local_dir(Path(model_name.removeprefix("local-dir:")).expanduser())
    elif model_name.startswith("hf-hub:"):
        repo = model_name.removeprefix("hf-hub:")
        if hub_offline() and not _hub_cached(repo, ("open_clip_config.json",)):
            raise ModelNotAvailableError(
                f"CLIP model '{model_name}' is not in the Hugging Face cache and "
                "HF_HUB_OFFLINE=1 forbids downloading it. Download it once, or set "
                "ARPO_CLIP_MODEL=local-dir:/path/to/folder."
            )
    else:
        _check_builtin(model_name, pretrained)


def _check_local_dir(folder: Path) -> None:
    if not (folder / "open_clip_config.json").is_file():
        raise ModelNotAvailableError(
            f"CLIP model folder '{folder}' has no open_clip_config.json. Point "
            "ARPO_CLIP_MODEL=local-dir:/path at a folder with open_clip_config.json and "
            "its weights (open_clip_model.safetensors)."
        )
    if not any(any(folder.glob(ext)) for ext in ("*.safetensors", "*.bin", "*.pt", "*.pth")):
        raise ModelNotAvailableError(
            f"CLIP model folder '{folder}' has a config but no weights file; add "
            "open_clip_model.safetensors or open_clip_pytorch_model.bin, or point "
            "ARPO_CLIP_MODEL=local-dir:/path at a folder that has them."
        )


def _check_builtin(model_name: str, pretrained: str | None) -> None:
    import open_clip

    if model_name not in open_clip.list_models():
        raise ModelNotAvailableError(
            f"unknown CLIP architecture '{model_name}'. Use an open_clip name such as "
            "ViT-L-14, or ARPO_CLIP_MODEL=local-dir:/path or hf-hub:org/repo."
        )
    if pretrained and Path(pretrained).expanduser().is_file():
        return
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained not in tags:
        raise ModelNotAvailableError(
            f"'{pretrained}' is neither a pretrained tag of {model_name} "
            f"({', '.join(tags) or 'none'}) nor an existing checkpoint file. "
            "Set ARPO_CLIP_PRETRAINED to one of those."
        )
    if hub_offline():
        entry = (open_clip.get_pretrained_cfg(model_name, pretrained).get("hf_hub") or "").strip(
            "/"
        )
        parts = entry.split("/")
        repo, names = (
            "/".join(parts[:2]),
            tuple(parts[2:])
            or (
                "open_clip_model.safetensors",
                "open_clip_pytorch_model.bin",
            ),
        )
        if len(parts) < 2 or not _hub_cached(repo, names):
            raise ModelNotAvailableError(
                f"CLIP weights '{model_name}/{pretrained}' are not in the local cache and "
                "HF_HUB_OFFLINE=1 forbids downloading them. Download them once, or set "
                "ARPO_CLIP_PRETRAINED to a local checkpoint file."
            )


def _hub_cached(repo: str, filenames: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in filenames)
