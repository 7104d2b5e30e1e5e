"""Log-likelihoods and greedy generations from an HF-format causal LM folder.

Tokenisation follows lm-evaluation-harness's HF backend (``lm_eval.api.model.TemplateLM._encode_pair``): trailing
spaces of the context move to the continuation, the pair is encoded whole and the continuation is the tokens past
the context's own encoding, inputs are left-truncated to the model's length; so per-item log-likelihoods agree with
lm-eval (``tests/test_eval_lmeval.py``). Written here rather than calling lm-eval because of what it computes per
batch: lm-eval takes a log-softmax over the whole vocabulary at every position of every padded row; this scorer

* runs each distinct input once (the four `` A``/`` B``/`` C``/`` D`` continuations of a letter prompt share one
  input: the context),
* applies the LM head and the softmax to the continuation positions only, not to every position of the prompt,
* sorts inputs by length so a batch pads little (right padding: a causal model's real positions never see it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .benchmarks import EvalError


def _torch():
    import torch

    return torch


class CausalLM:
    """A causal LM and its tokenizer from one folder (the trainer's exports, or any HF checkpoint)."""

    def __init__(self, model_dir: str | Path, *, device: str | None = None, dtype: str = "float32",
                 batch_size: int = 32, max_length: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch = _torch()
        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise EvalError(f"{folder}: not an HF model folder (no config.json)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as err:
            raise EvalError(f"{folder}: cannot load its tokenizer ({str(err).splitlines()[0]})") from None
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise EvalError(f"--dtype {dtype!r} is not a torch dtype (float32, bfloat16, float16)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype)).to(self.device)
        self.model.eval()
        self._check_vocab(folder)
        self.batch_size = batch_size
        self.max_length = max_length or self._model_max_length()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _check_vocab(self, folder: Path) -> None:
        rows = self.model.get_input_embeddings().num_embeddings
        if rows < len(self.tokenizer):
            raise EvalError(f"{folder}: the model's vocabulary ({rows} embedding rows) is smaller than its "
                            f"tokenizer's ({len(self.tokenizer)} tokens); tokens past {rows - 1} have no embedding")

    def _model_max_length(self) -> int:
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "seq_length"):
            if isinstance(getattr(config, attr, None), int):
                return getattr(config, attr)
        return 2048

    # ------------------------------------------------------------------------------------------------------------
    # log-likelihoods

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context ids, continuation ids) per pair, by lm-eval's rule (see the module docstring)."""
        moved = []
        for context, continuation in pairs:
            if not context:
                raise EvalError("an empty context cannot be scored")
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces:
                context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
            moved.append((context, continuation))
        contexts = sorted({c for c, _ in moved})
        context_ids = dict(zip(contexts, self.tokenizer(contexts)["input_ids"]))
        wholes = self.tokenizer([c + x for c, x in moved])["input_ids"]
        return [(context_ids[c], whole[len(context_ids[c]):]) for (c, _), whole in zip(moved, wholes)]

    def loglikelihoods(self, pairs: Sequence[tuple[str, str]], progress: Callable[[int], None] | None = None
                       ) -> list[float]:
        """Sum of the continuation's token log-probabilities, given the context, per (context, continuation)."""
        encoded = self.encode_pairs(pairs)
        inputs: dict[tuple[int, ...], int] = {}  # distinct model input -> longest continuation it must score
        requests = []
        for context_ids, cont_ids in encoded:
            whole = (context_ids + cont_ids)[-(self.max_length + 1):]
            key = tuple(whole[:-1])
            inputs[key] = max(inputs.get(key, 0), len(cont_ids))
            requests.append((key, whole[-len(cont_ids):]))
        logprobs = self._score_inputs(inputs, progress)
        out = []
        for key, cont_ids in requests:
            rows = logprobs[key][-len(cont_ids):]  # [len(cont), vocab] log-probs predicting each continuation token
            out.append(float(sum(rows[j][t] for j, t in enumerate(cont_ids))))
        return out

    def _score_inputs(self, inputs: dict[tuple[int, ...], int], progress) -> dict[tuple[int, ...], object]:
        """{input: log-probs of its last ``n`` positions} for every distinct input, longest inputs first."""
        torch = _torch()
        order = sorted(inputs, key=len, reverse=True)
        out = {}
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                out.update(self._score_batch(batch, inputs))
                if progress:
                    progress(len(batch))
        return out

    def _score_batch(self, batch: list[tuple[int, ...]], need: dict[tuple[int, ...], int]) -> dict:
        """Log-probs of the last ``need[seq]`` positions of each row: the LM head and the softmax run on those
        positions only (see :meth:`_position_logits`)."""
        torch = _torch()
        ids = torch.full((len(batch), len(batch[0])), self.pad_id, dtype=torch.long)
        rows, cols = [], []
        for r, seq in enumerate(batch):
            ids[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            rows += [r] * need[seq]
            cols += range(len(seq) - need[seq], len(seq))
        logits = self._position_logits(ids.to(self.device), torch.tensor(rows), torch.tensor(cols))
        logprobs = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1).cpu().numpy()
        out, at = {}, 0
        for seq in batch:
            out[seq] = logprobs[at:at + need[seq]]
            at += need[seq]
        return out

    def _position_logits(self, ids, rows, cols):
        """Logits at (row, col) pairs, [n, vocab]. Models that transform logits after their head (Gemma-2's
        ``final_logit_softcapping``, Cohere's ``logit_scale``) go through the model's own forward with
        ``logits_to_keep`` covering the needed columns; all others run the decoder, then the head on the needed
        hidden states only."""
        torch = _torch()
        config = self.model.config
        if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
            first = int(cols.min())
            keep = torch.arange(first, ids.shape[1], device=self.device)
            logits = self.model(input_ids=ids, logits_to_keep=keep).logits
            return logits[rows.to(self.device), (cols - first).to(self.device)]
        hidden = self.model.base_model(input_ids=ids).last_hidden_state
        return self.model.get_output_embeddings()(hidden[rows.to(self.device), cols.to(self.device)])

    # ------------------------------------------------------------------------------------------------------------
    # generation

    def chat_prompt(self, user: str) -> str:
        """``user`` as one user turn: the tokenizer's chat template with its generation prompt when the folder has
        one (a chat model answers in the form it was tuned on), else the text and a newline (a base model)."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                      add_generation_prompt=True)
        return user + "\n"

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, stop: Sequence[str],
                 progress: Callable[[int], None] | None = None) -> list[str]:
        """Greedy continuations, each cut at the first ``stop`` string; batched with left padding."""
        torch = _torch()
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        texts: dict[int, str] = {}
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                          max_length=max(1, self.max_length - max_new_tokens)).to(self.device)
                gen = self.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                          pad_token_id=tok.pad_token_id, stop_strings=list(stop), tokenizer=tok)
                for i, row in zip(idx, gen[:, enc["input_ids"].shape[1]:]):
                    texts[i] = cut_at_stop(tok.decode(row, skip_special_tokens=True), stop)
                if progress:
                    progress(len(idx))
        return [texts[i] for i in range(len(prompts))]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    cuts = [text.index(s) for s in stop if s in text]
    return text[:min(cuts)] if cuts else text
