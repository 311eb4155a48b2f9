"""The sampled tokens' log-probabilities on the embedded model, without ``logits_all``.

llama-cpp-python returns logprobs only for a ``Llama`` created with ``logits_all=True``, which keeps
n_ctx x vocabulary floats (about 4 GB for Gemma 3's 262k vocabulary at n_ctx 4096) and evaluates the
output layer at every prompt position. A sampled token's logprob needs only the logits of the step
that sampled it. llama-cpp-python hands those to a *logits processor* (a custom sampler placed first
in llama.cpp's sampler chain, so it sees the raw logits before penalties, top-k/top-p and
temperature), one step at a time: this one keeps the last step's logits (one vocabulary-sized
vector) and their log-sum-exp, and when the generator yields the token sampled from them, records
``logit[token] - logsumexp(logits)``. The logits are left unchanged, so sampling is too.

The values are log-probabilities of the model's own distribution (temperature 1, before any
truncation), as OpenAI-compatible servers report them.
"""

from __future__ import annotations

__all__ = ["TokenLogprobs"]

import math
from typing import Any


class TokenLogprobs:
    """A llama-cpp-python ``LogitsProcessor`` that records the log-probability of each sampled token.

    Call it as the processor (``(input_ids, scores) -> scores``) and ``took(token)`` with each token
    the generator yields; ``values`` then holds one logprob per token, in order.
    """

    def __init__(self) -> None:
        self.values: list[float] = []
        self._logits: Any = None
        self._lse = 0.0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np  # llama-cpp-python's own dependency: present wherever this runs

        # A copy: llama.cpp reuses and reorders this buffer (top-k sorts it) before the token is chosen.
        logits = np.array(scores, dtype=np.float32)
        top = float(logits.max())
        self._logits = logits
        self._lse = top + math.log(float(np.exp(logits - top).sum(dtype=np.float64)))
        return scores

    def took(self, token: int) -> None:
        """The token sampled from the logits last seen (the processor runs once per sampled token)."""
        if self._logits is not None and 0 <= token < len(self._logits):
            self.values.append(float(self._logits[token]) - self._lse)
        self._logits = None
