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
