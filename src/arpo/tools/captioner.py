"""A local image-to-text model (Hugging Face transformers) that writes a first prompt.

BLIP (``BlipForConditionalGeneration`` with ``BlipProcessor``) is loaded by its own classes;
any other model type goes through ``AutoModelForImageTextToText`` with ``AutoProcessor``
(``AutoModelForVision2Seq``, its old name, is gone in transformers 5). The reference is
checked before any heavy import (:func:`check_captioner_ref`), so with ``HF_HUB_OFFLINE=1`` a
hub id that is not cached fails at once, naming the model and ``ARPO_CAPTION_MODEL``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from arpo.tools.devices import dtype_name, resolve_device
from arpo.tools.loading import check_transformers_ref, model_load_error

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

SETTING = "ARPO_CAPTION_MODEL"
KIND = "captioning model"
TEXT_BATCH = 64  # captions read per pass by :meth:`Captioner.likelihood`


class Captioner:
    """Captions images in batches: ``caption(images)`` gives one string per image."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        device: str = "cpu",
        prompt: str | None = None,
        max_new_tokens: int = 40,
        batch_size: int = 8,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.device = device
        self.dtype = getattr(model, "dtype", None)
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls,
        ref: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        prompt: str | None = None,
        max_new_tokens: int = 40,
        batch_size: int = 8,
    ) -> Captioner:
        """Load ``ref`` (a hub id or a local folder saved with ``save_pretrained``) on
        ``device`` in ``dtype`` (ARPO_CAPTION_DTYPE; auto: float16 on accelerators, float32
        on the CPU)."""
        source = check_captioner_ref(ref)
        device = resolve_device(device)
        chosen = dtype_name(device, dtype, name="ARPO_CAPTION_DTYPE")
        import torch
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        try:
            model, processor = _load(source, getattr(torch, chosen))
        except Exception as error:  # transformers raises OSError, ValueError, KeyError...
            raise model_load_error(KIND, ref, SETTING, error) from error
        model.to(device)
        log.info("loaded captioner %s (%s) on %s (%s)", ref, type(model).__name__, device, chosen)
        return cls(
            model,
            processor,
            name=ref,
            device=device,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, ``batch_size`` images per ``generate`` call."""
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            captions += self._caption_batch(list(images[start : start + self.batch_size]))
        return captions

    def hypotheses(self, image: Image.Image, count: int) -> list[str]:
        """The captioner's ``count`` best captions of ``image`` by beam search, best first,
        repeats dropped: where it is unsure (a star or a heart?) the runner-ups say so."""
        if count <= 1:
            return self.caption([image])
        texts = self._caption_batch(
            [image], num_beams=count, num_return_sequences=count, early_stopping=True
        )
        return [text for text in dict.fromkeys(texts) if text]

    @property
    def can_score(self) -> bool:
        """Whether :meth:`likelihood` works for this model: encoder-decoder captioners (a
        vision encoder-decoder, BLIP) read a caption in one pass; decoder-only chat models
        are not scored."""
        config = self.model.config
        return bool(getattr(config, "is_encoder_decoder", False)) or config.model_type == "blip"

    def likelihood(self, image: Image.Image, texts: Sequence[str]) -> list[float]:
        """How readily the model would write each of ``texts`` as ``image``'s caption: the
        mean log-probability of its tokens (nats, at most 0).

        A second judge of prompts beside CLIP: it reads the image through its own encoder,
        so where CLIP cannot tell a star from a heart the captioner may still say which. The
        image is encoded once; the texts are read in batches of ``TEXT_BATCH``."""
        if not self.can_score:
            raise NotImplementedError(f"captioner {self.name} cannot score captions")
        import torch

        scores: list[float] = []
        with torch.inference_mode():
            pixels = self._inputs([image.convert("RGB")])["pixel_values"]
            encoded = None
            if self.model.config.model_type != "blip":
                encoded = self.model.get_encoder()(pixel_values=pixels).last_hidden_state
            for start in range(0, len(texts), TEXT_BATCH):
                chunk = list(texts[start : start + TEXT_BATCH])
                scores += self._likelihood_batch(pixels, encoded, chunk)
        return scores

    def _likelihood_batch(self, pixels: Any, encoded: Any, texts: list[str]) -> list[float]:
        import torch

        tokenizer = self.processor.tokenizer
        # padded on the right whatever the tokenizer's side (decoder-only models' is left)
        tokens = tokenizer(texts, padding=True, padding_side="right", return_tensors="pt")
        tokens = tokens.to(self.device)
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if encoded is None:  # BLIP: its decoder reads the ids and predicts each next one
            batch = pixels.expand(len(texts), *pixels.shape[1:])
            logits = self.model(pixel_values=batch, input_ids=ids, attention_mask=mask).logits
            logits, targets, kept = logits[:, :-1], ids[:, 1:], mask[:, 1:]
        else:  # the decoder starts from its start token: drop the tokenizer's own, if any
            start = self.model.config.decoder_start_token_id
            if start is not None and bool((ids[:, 0] == start).all()):
                ids, mask = ids[:, 1:], mask[:, 1:]
            labels = ids.masked_fill(mask == 0, -100)
            states = encoded.expand(len(texts), *encoded.shape[1:])
            logits = self.model(encoder_outputs=(states,), labels=labels).logits
            targets, kept = ids, mask
        picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]
        kept = kept.float()
        return ((picked * kept).sum(dim=1) / kept.sum(dim=1).clamp(min=1)).tolist()

    def _caption_batch(self, images: list[Image.Image], **generate: Any) -> list[str]:
        import torch

        inputs = self._inputs([image.convert("RGB") for image in images])
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **generate)
        output = _new_tokens(output, inputs.get("input_ids"))
        texts = self.processor.batch_decode(output, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]

    def _inputs(self, images: list[Image.Image]) -> Any:
        """The processor's tensors on the model's device, pixels in its dtype."""
        text = self._text()
        if text is None:
            inputs = self.processor(images=images, return_tensors="pt")
        else:
            inputs = self.processor(
                images=images, text=[text] * len(images), return_tensors="pt", padding=True
            )
        return inputs.to(self.device, dtype=self.dtype)

    def _text(self) -> str | None:
        """The prompt as the model reads it: through its chat template when it has one."""
        if self.prompt is None or not getattr(self.processor, "chat_template", None):
            return self.prompt
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
        ]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )


def check_captioner_ref(ref: str) -> str:
    """A loadable reference (local folder or hub id), else ModelNotAvailableError naming
    ARPO_CAPTION_MODEL: no torch, no transformers, no network."""
    return check_transformers_ref(ref, SETTING, KIND)


def _load(source: str, dtype: Any) -> tuple[Any, Any]:
    """The model and its processor: BLIP's own classes, else the image-text-to-text autos."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(source)
    if config.model_type == "blip":
        model_class: Any = transformers.BlipForConditionalGeneration
        processor_class: Any = transformers.BlipProcessor
    else:
        model_class = transformers.AutoModelForImageTextToText  # transformers >= 4.57 has it
        processor_class = transformers.AutoProcessor
    model = model_class.from_pretrained(source, dtype=dtype)
    processor = processor_class.from_pretrained(source)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and config.model_type != "blip":
        tokenizer.padding_side = "left"  # decoder-only models generate after the prompt
    return model, processor


def _new_tokens(output: Any, input_ids: Any) -> Any:
    """Decoder-only models echo the prompt before their answer: drop it. BLIP's output begins
    with its decoder start token instead, so its caption keeps the prompt it continued."""
    if input_ids is None or output.shape[1] < input_ids.shape[1]:
        return output
    length = input_ids.shape[1]
    if bool((output[:, :length] == input_ids.to(output.device)).all()):
        return output[:, length:]
    return output
