"""The local captioner: a tiny random-weight BLIP built in-process, saved, and loaded back
through the real ``Captioner.from_pretrained``; batching; the offline error; and the first
prompt it gives ``caption_reference``, completed with vocabulary phrases only where they help."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_openai import FakeOpenAI
from PIL import Image

from arpo import api
from arpo.config import Settings
from arpo.errors import ModelNotAvailableError
from arpo.graph.nodes import caption_reference
from arpo.tools.captioner import Captioner, _new_tokens
from arpo.tools.families import profile_named
from arpo.tools.tokens import budget_for
from arpo.tools.toolbox import Toolbox
from arpo.tools.vocabulary import Vocabulary, split_phrases

WORDS = [
    "a",
    "an",
    "the",
    "of",
    "photo",
    "picture",
    "cat",
    "dog",
    "red",
    "blue",
    "sitting",
    "on",
    "sofa",
    "painting",
    "house",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def build_tiny_blip(folder: Path) -> Path:
    """A random-weight BLIP captioner (two-layer towers of width 32, 32 px images) and its
    processor, with a BERT tokenizer built from a small vocab file: no hub."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    tokens = [*SPECIALS, *WORDS]
    folder.mkdir(parents=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(tokens) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab_file), model_max_length=32)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    ids = {token: tokens.index(token) for token in ("[PAD]", "[SEP]", "[DEC]")}
    config = BlipConfig(
        text_config={
            "vocab_size": len(tokens),
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "max_position_embeddings": 64,
            "bos_token_id": ids["[DEC]"],
            "pad_token_id": ids["[PAD]"],
            "sep_token_id": ids["[SEP]"],
            "eos_token_id": ids["[SEP]"],
        },
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
        image_text_hidden_size=16,
    )
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    vocab_file.unlink()  # the saved tokenizer.json is what loads
    return folder


@pytest.fixture(scope="module")
def blip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_blip(tmp_path_factory.mktemp("captioner") / "tiny-blip")


@pytest.fixture(scope="module")
def blip(blip_folder: Path) -> Captioner:
    return Captioner.from_pretrained(str(blip_folder), device="cpu", max_new_tokens=6)


def images(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [
        Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8))
        for i in range(count)
    ]


class CountingGenerate:
    """Wraps a model's ``generate`` to count calls and the batch size of each."""

    def __init__(self, model: Any) -> None:
        self.model, self.inner, self.batches = model, model.generate, []

    def __call__(self, **kwargs: Any) -> Any:
        self.batches.append(len(kwargs["pixel_values"]))
        return self.inner(**kwargs)

    def __enter__(self) -> CountingGenerate:
        self.model.generate = self
        return self

    def __exit__(self, *exc: object) -> None:
        del self.model.generate  # the class's own method again


# --------------------------------------------------------------------------- loading, batching


def test_a_saved_blip_loads_back_and_writes_words_of_its_vocabulary(blip: Captioner) -> None:
    assert type(blip.model).__name__ == "BlipForConditionalGeneration"
    assert type(blip.processor).__name__ == "BlipProcessor"
    assert str(blip.dtype) == "torch.float32" and blip.device == "cpu"
    (caption,) = blip.caption(images(1))
    assert caption and set(caption.split()) <= set(WORDS)  # decoded, special tokens dropped
    assert len(caption.split()) <= 6  # max_new_tokens


def test_n_images_make_n_captions_in_one_generate_call(blip: Captioner) -> None:
    pictures = images(3)
    with CountingGenerate(blip.model) as counted:
        captions = blip.caption(pictures)
    assert counted.batches == [3]
    assert len(captions) == 3 and all(isinstance(c, str) and c for c in captions)
    alone = [blip.caption([picture])[0] for picture in pictures]
    assert captions == alone  # batching does not change a caption


def test_blip_scores_captions_in_a_batch_as_it_does_one_by_one(blip: Captioner) -> None:
    """The likelihood of a caption (mean token log-probability): BLIP can judge prompts."""
    assert blip.can_score
    (picture,) = images(1)
    texts = [" ".join(WORDS[:n]) for n in (1, 3, 2, 5)]
    together = blip.likelihood(picture, texts)
    alone = [blip.likelihood(picture, [text])[0] for text in texts]
    assert together == pytest.approx(alone, abs=1e-4)
    assert all(score <= 0 for score in together)


def test_a_captioner_that_cannot_score_says_so() -> None:
    from types import SimpleNamespace

    chat = SimpleNamespace(
        config=SimpleNamespace(is_encoder_decoder=False, model_type="llava"),
        eval=lambda: chat,
    )
    captioner = Captioner(chat, processor=None, name="a-chat-model")
    assert not captioner.can_score
    with pytest.raises(NotImplementedError, match="a-chat-model cannot score"):
        captioner.likelihood(images(1)[0], ["a caption"])


def test_batches_are_cut_at_batch_size(blip_folder: Path) -> None:
    captioner = Captioner.from_pretrained(str(blip_folder), device="cpu", batch_size=2)
    with CountingGenerate(captioner.model) as counted:
        captions = captioner.caption(images(5))
    assert counted.batches == [2, 2, 1]
    assert len(captions) == 5
    assert captioner.caption([]) == []


def test_blip_continues_the_caption_prompt(blip_folder: Path) -> None:
    captioner = Captioner.from_pretrained(
        str(blip_folder), device="cpu", prompt="a photo of", max_new_tokens=4
    )
    (caption,) = captioner.caption(images(1))
    assert caption.startswith("a photo of")
    assert len(caption.split()) <= 3 + 4  # at most max_new_tokens after it


def test_a_chat_template_wraps_the_prompt(blip_folder: Path) -> None:
    captioner = Captioner.from_pretrained(str(blip_folder), device="cpu", prompt="cat")
    captioner.processor.chat_template = (
        "the picture of {{ messages[0]['content'][1]['text'] }}"
        "{% if add_generation_prompt %} sitting{% endif %}"
    )
    (caption,) = captioner.caption(images(1))
    assert caption.startswith("the picture of cat sitting")


def test_an_echoed_prompt_is_cut_from_the_output() -> None:
    import torch

    prompt = torch.tensor([[7, 8, 9], [7, 8, 9]])
    echoed = torch.tensor([[7, 8, 9, 1, 2], [7, 8, 9, 3, 0]])
    assert _new_tokens(echoed, prompt).tolist() == [[1, 2], [3, 0]]
    blip_like = torch.tensor([[5, 8, 9, 1], [5, 8, 9, 3]])  # a decoder start token first
    assert _new_tokens(blip_like, prompt) is blip_like
    assert _new_tokens(echoed, None) is echoed


# --------------------------------------------------------------------------- errors


def test_an_uncached_hub_id_offline_fails_fast_naming_model_and_setting(
    empty_hub_cache: Path,
) -> None:
    began = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as caught:
        Captioner.from_pretrained("nobody/missing-captioner", device="cpu")
    assert time.perf_counter() - began < 1.0
    message = str(caught.value)
    assert "nobody/missing-captioner" in message
    assert "ARPO_CAPTION_MODEL" in message and "HF_HUB_OFFLINE=1" in message
    assert "local transformers directory" in message


def test_a_folder_that_is_not_a_transformers_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=r"no config\.json.*ARPO_CAPTION_MODEL"):
        Captioner.from_pretrained(str(tmp_path), device="cpu")


def test_a_broken_model_folder_names_the_model_and_setting(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "blip"}')
    with pytest.raises(ModelNotAvailableError) as caught:
        Captioner.from_pretrained(str(tmp_path), device="cpu")
    assert str(tmp_path) in str(caught.value) and "ARPO_CAPTION_MODEL" in str(caught.value)


# --------------------------------------------------------------------------- the Toolbox


def test_the_toolbox_builds_the_configured_captioner_once(
    blip_folder: Path, tmp_path: Path
) -> None:
    assert Toolbox(Settings(home=tmp_path)).captioner is None
    assert Toolbox(Settings(home=tmp_path, caption_model="")).captioner is None
    settings = Settings(
        home=tmp_path, caption_model=str(blip_folder), device="cpu", caption_max_new_tokens=3
    )
    toolbox = Toolbox(settings)
    captioner = toolbox.captioner
    assert isinstance(captioner, Captioner)
    assert captioner.name == str(blip_folder) and captioner.max_new_tokens == 3
    assert toolbox.captioner is captioner
    given = FakeCaptioner("a cat")
    assert Toolbox(Settings(home=tmp_path), captioner=given).captioner is given


def test_a_preset_names_its_captioner_unless_the_setting_says_otherwise(
    blip_folder: Path, tmp_path: Path
) -> None:
    from arpo.demo.clip_model import demo_captioner_dir

    demo = Toolbox(Settings(home=tmp_path, preset="demo"))
    assert demo.caption_model == str(demo_captioner_dir()) and demo.captioner_configured
    assert demo.describe_models()["captioner"] == str(demo_captioner_dir())
    chosen = Toolbox(Settings(home=tmp_path, preset="demo", caption_model=str(blip_folder)))
    assert chosen.caption_model == str(blip_folder)
    off = Toolbox(Settings(home=tmp_path, preset="demo", caption_model="none"))
    assert off.caption_model is None and off.captioner is None


def test_beam_hypotheses_are_distinct_and_best_first(blip: Captioner) -> None:
    (image,) = images(1)
    found = blip.hypotheses(image, 4)
    assert 1 <= len(found) <= 4 and len(set(found)) == len(found)
    assert blip.hypotheses(image, 1) == blip.caption([image])


def test_the_caption_dtype_setting_is_checked(blip_folder: Path) -> None:
    from arpo.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="ARPO_CAPTION_DTYPE=float16"):
        Captioner.from_pretrained(str(blip_folder), device="cpu", dtype="float16")


# --------------------------------------------------------------------------- caption_reference

REFERENCE = object()  # the hand-made scorer checks that callers pass the reference through

VOCABULARY = Vocabulary.from_mapping(
    {
        "subject": ["a dog", "a house"],
        "medium": ["oil painting", "watercolor"],
        "lighting": ["dim light", "harsh light"],
    }
)


class WordScorer:
    """A prompt scores the sum of its phrases' weights (unknown phrases 0)."""

    name = "words"

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def text_similarity(self, texts: list[str], reference: Any) -> list[float]:
        assert reference is REFERENCE
        return [sum(self.weights.get(p, 0.0) for p in split_phrases(t)) for t in texts]


class FakeCaptioner:
    name = "fake-captioner"

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[tuple[int, int]] = []

    def caption(self, pictures: list[Image.Image]) -> list[str]:
        self.seen += [picture.size for picture in pictures]
        return [self.text for _ in pictures]


def word_toolbox(
    home: Path, weights: dict[str, float], captioner: Any = None, **settings: Any
) -> tuple[Toolbox, str]:
    toolbox = Toolbox(
        Settings(home=home, **settings),
        scorer=WordScorer(weights),  # type: ignore[arg-type]
        vocabulary=VOCABULARY,
        captioner=captioner,
    )
    digest = toolbox.store.put_image(images(1)[0])
    return toolbox, digest


WEIGHTS = {
    "a cat on a sofa": 0.3,
    "a dog": 0.5,  # a subject phrase outscores the caption: not added, the caption is the subject
    "oil painting": 0.2,  # raises the score: added
    "watercolor": 0.1,
    "dim light": -0.1,  # every lighting phrase lowers it: none added
    "harsh light": -0.2,
}


def test_the_captioner_caption_is_completed_with_phrases_that_raise_the_score(
    tmp_path: Path,
) -> None:
    captioner = FakeCaptioner("a cat on a sofa")
    toolbox, digest = word_toolbox(tmp_path, WEIGHTS, captioner)
    prompt = caption_reference(toolbox, digest, REFERENCE, use_llm=True)  # no LLM configured
    assert prompt == "a cat on a sofa, oil painting"
    assert captioner.seen == [(48, 40)]  # the stored reference image, once


def test_no_phrase_is_added_when_none_raises_the_score(tmp_path: Path) -> None:
    weights = {**WEIGHTS, "oil painting": -0.01, "watercolor": 0.0}
    toolbox, digest = word_toolbox(tmp_path, weights, FakeCaptioner("a cat on a sofa"))
    assert caption_reference(toolbox, digest, REFERENCE, use_llm=False) == "a cat on a sofa"


def test_without_a_captioner_it_is_interrogation_as_before(tmp_path: Path) -> None:
    toolbox, digest = word_toolbox(tmp_path, WEIGHTS)
    assert toolbox.captioner is None
    assert caption_reference(toolbox, digest, REFERENCE, use_llm=False) == "a dog, oil painting"


def test_an_empty_caption_falls_back_to_interrogation(tmp_path: Path) -> None:
    toolbox, digest = word_toolbox(tmp_path, WEIGHTS, FakeCaptioner("  "))
    assert caption_reference(toolbox, digest, REFERENCE, use_llm=False) == "a dog, oil painting"


def test_an_llm_asked_for_captions_instead_of_the_captioner(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    captioner = FakeCaptioner("a cat on a sofa")
    llm = {"llm_base_url": fake_openai.base_url, "llm_api_key": "test", "llm_max_retries": 0}
    toolbox, digest = word_toolbox(tmp_path, WEIGHTS, captioner, **llm)
    budget = budget_for(profile_named("sd1"))
    fake_openai.reply({"prompt": "a grey cat, photo"})
    assert caption_reference(toolbox, digest, REFERENCE, True, budget=budget) == (
        "a grey cat, photo"
    )
    assert captioner.seen == []
    # not asked for (the offline strategy): the captioner's
    prompt = caption_reference(toolbox, digest, REFERENCE, False, budget=budget)
    assert prompt == "a cat on a sofa, oil painting"
    assert len(fake_openai.requests) == 1


def test_api_caption_with_the_tiny_blip_and_the_tiny_clip(
    tiny_toolbox: Toolbox, blip: Captioner
) -> None:
    toolbox = Toolbox(
        tiny_toolbox.settings,
        renderer=tiny_toolbox.backend,
        scorer=tiny_toolbox.scorer,
        captioner=blip,
    )
    picture = images(1)[0]
    raw = blip.caption([picture])[0]
    prompt = api.caption(picture, toolbox=toolbox, use_llm=False)
    phrases = split_phrases(prompt)
    assert phrases[0] == raw
    vocabulary = toolbox.vocabulary
    assert all(vocabulary.category_of(p) not in (None, "subject") for p in phrases[1:])
    reference = toolbox.scorer.encode_images([picture])[0]
    scores = toolbox.scorer.text_similarity([raw, prompt], reference)
    assert scores[1] >= scores[0] - 1e-6  # phrases only ever raise it
