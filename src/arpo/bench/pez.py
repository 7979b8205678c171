"""PEZ: gradient-based hard-prompt optimization through a CLIP text tower ("Hard Prompts Made
Easy", Wen et al. 2023).

Keep ``tokens`` continuous token embeddings; every step, project each onto its nearest
vocabulary embedding (cosine), run the text tower on the *projected* prompt, and apply the
gradient taken there to the continuous embeddings (straight-through). The answer is the best
projected prompt seen, decoded with the model's tokenizer. Works on any open_clip model with
``token_embedding`` and ``encode_text`` (the token embeddings are swapped in by a forward hook,
so open_clip's own positional embedding, attention mask and pooling apply unchanged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEFAULT_TOKENS = 8
DEFAULT_STEPS = 150


def pez_prompt(
    model: Any,
    tokenizer: Any,
    reference: torch.Tensor,
    *,
    tokens: int = DEFAULT_TOKENS,
    steps: int = DEFAULT_STEPS,
    lr: float = 0.1,
    weight_decay: float = 0.1,
    seed: int = 0,
) -> str:
    """A ``tokens``-token prompt whose CLIP text embedding is close to ``reference`` (a
    normalised image embedding)."""
    import torch

    layout = PromptLayout.from_tokenizer(tokenizer, tokens)
    table = model.token_embedding.weight.detach()
    allowed = layout.allowed_ids(table.shape[0], tokenizer).to(table.device)
    unit_table = torch.nn.functional.normalize(table[allowed], dim=-1)
    generator = torch.Generator().manual_seed(seed)
    start = allowed[torch.randint(len(allowed), (layout.tokens,), generator=generator)]
    soft = table[start].clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([soft], lr=lr, weight_decay=weight_decay)
    target = reference.to(table.device, table.dtype)
    best_score, best_ids = float("-inf"), start
    for _ in range(steps):
        ids = allowed[(torch.nn.functional.normalize(soft, dim=-1) @ unit_table.T).argmax(-1)]
        straight = soft + (table[ids] - soft).detach()  # value: projected; gradient: to soft
        features = encode_with_embeddings(model, layout.token_ids(ids), straight)
        score = torch.nn.functional.cosine_similarity(features, target[None], dim=-1)[0]
        if score.item() > best_score:
            best_score, best_ids = score.item(), ids.detach().clone()
        (grad,) = torch.autograd.grad(1 - score, [soft])
        soft.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return decode_ids(tokenizer, best_ids.tolist())


class PromptLayout:
    """Where the optimized tokens sit: ``[start] t1..tn [end] [pad]...``, read off how the
    tokenizer encodes the empty text (open_clip pools at the end token's position)."""

    def __init__(self, start: int, end: int, pad: int, context: int, tokens: int) -> None:
        self.start, self.end, self.pad, self.context = start, end, pad, context
        self.tokens = max(1, min(tokens, context - 2))

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, tokens: int) -> PromptLayout:
        empty = tokenizer([""])[0].tolist()
        return cls(empty[0], empty[1], empty[2], len(empty), tokens)

    def allowed_ids(self, vocab_size: int, tokenizer: Any) -> torch.Tensor:
        """Every id that is not a special token (start, end, padding, unknown)."""
        import torch

        special = {self.start, self.end, self.pad, *_unknown_ids(tokenizer)}
        keep = [i for i in range(vocab_size) if i not in special and i < max(self.end, 1)]
        return torch.tensor(keep or [i for i in range(vocab_size) if i not in special])

    def token_ids(self, ids: torch.Tensor) -> torch.Tensor:
        import torch

        row = torch.full((1, self.context), self.pad, dtype=torch.long, device=ids.device)
        row[0, 0] = self.start
        row[0, 1 : 1 + len(ids)] = ids
        row[0, 1 + len(ids)] = self.end
        return row


def encode_with_embeddings(model: Any, ids: torch.Tensor, embeddings: torch.Tensor) -> Any:
    """``model.encode_text(ids)`` with the embeddings of positions 1..n replaced."""
    n = embeddings.shape[0]

    def swap(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, 1 : 1 + n] = embeddings.to(output.dtype)
        return output

    handle = model.token_embedding.register_forward_hook(swap)
    try:
        return model.encode_text(ids)
    finally:
        handle.remove()


def decode_ids(tokenizer: Any, ids: list[int]) -> str:
    """Token ids as text: open_clip's BPE tokenizer decodes itself; its Hugging Face wrapper
    holds the tokenizer that does."""
    inner = getattr(tokenizer, "tokenizer", None)
    if inner is not None and hasattr(inner, "decode"):
        text = inner.decode(ids, skip_special_tokens=True)
    else:
        text = tokenizer.decode(ids)
    return " ".join(str(text).split())


def _unknown_ids(tokenizer: Any) -> list[int]:
    inner = getattr(tokenizer, "tokenizer", None)
    unk = getattr(inner, "unk_token_id", None)
    return [unk] if isinstance(unk, int) else []
