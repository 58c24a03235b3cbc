"""The MAGA attention processor and the per-run controller that owns its memory.

For panel n at a MAGA layer l >= first_layer and step t >= start_step (docs/maga.md's reading of
thesis eq. 4.1-4.3):

    out = softmax(Q_n [K_n; K_m...]^T / sqrt(d) + B) [V_n; V_m...]     m in policy.sources(n)
    B   = 0 on own tokens; on panel m's tokens
    b_m = lambda * (log softmax_m(cos(c_n, c_m) / tau) + log k) + forgetting_m + gain

(k = number of memory panels). The ``+ log k`` makes the bias weight the memory panels among
themselves, as eq. 4.1-4.3 do: equal similarities add nothing, so lambda never switches the
memory off as a whole; ``gain`` (default 0) is the separate knob for more or less sharing.
With character routing (attention.routing), B is also -inf between the tokens of different
characters or settings, and forgetting is counted along each character's panels.

Keys/values of m come from the same layer, step and CFG branch. With ``memory_guidance`` w, the
unconditional branch's output is (1 - w) * MAGA + w * plain attention: classifier-free guidance
then pushes towards the memory as it pushes towards the prompt (the reference-only trick of
ControlNet's web UI, its "style fidelity" 1 - w). The batch the UNet sees is
``[uncond panels..., cond panels...]`` (or just the panels without CFG); each panel attends to
its own key set with one SDPA call, whether its sources sit earlier in the same batch (batched
mode) or in the memory bank (sequential mode): the same arithmetic on the same shapes, which is
why the two modes agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from sketchstory.attention.budget import kept_branches
from sketchstory.attention.layers import self_attention_layers
from sketchstory.attention.memory import MemoryBank
from sketchstory.attention.policy import MemoryPolicy
from sketchstory.attention.routing import Routing, memory_mask
from sketchstory.attention.tokens import layer_grid, select_tokens, subject_tokens


@dataclass(frozen=True)
class MAGAConfig:
    policy: MemoryPolicy
    first_layer: int  # in this UNet's self-attention layers, mapped from SD1.5's (layers.first_maga_layer)
    start_step: int = 24  # denoising iteration index, already scaled to the run's steps
    strength: float = 0.0  # lambda of the condition bias; 0 = plain shared attention
    tau: float = 0.1
    gain: float = 0.0  # logit offset on every memory token: > 0 shares more, < 0 less
    # Share of the unconditional CFG branch's attention that reads no memory: 0 = both branches read it
    # (the thesis), 1 = only the conditional one, so guidance amplifies the memory as it does the prompt.
    memory_guidance: float = 0.0
    token_budget: int | None = None
    subject_mask: bool = False

    def memory_branches(self, branches: int) -> int:
        """Guidance branches whose keys/values are read, so kept: the unconditional one only if it reads memory."""
        return kept_branches(branches, self.memory_guidance)


@dataclass
class MAGAState:
    """What the denoising loop tells the processors before each UNet call."""

    step: int = 0
    panels: tuple[int, ...] = ()  # story indices of the panels in the batch, in batch order
    branches: int = 1  # 2 with classifier-free guidance
    latent_hw: tuple[int, int] = (0, 0)
    write: frozenset[int] = frozenset()  # panels whose K/V later panels (or a save) need


@dataclass
class MAGARun:
    """One run's MAGA: config, memory bank, panel conditions and masks, and the loop's state."""

    config: MAGAConfig
    memory: MemoryBank = field(default_factory=MemoryBank)
    conditions: dict[int, torch.Tensor] = field(default_factory=dict)  # pooled condition c_n
    subject_masks: dict[int, torch.Tensor] = field(default_factory=dict)  # (H, W) bool, latent res
    routing: Routing | None = None  # character-routed memory (its tracks replace the policy's panel sources)
    state: MAGAState = field(default_factory=MAGAState)
    calls: int = 0  # MAGA (not plain) attention calls, so tests can check that MAGA fired
    # Routed masks of the panels being denoised, by (panel, tokens): without a token budget a mask depends
    # on neither layer nor step, so it is built once per resolution, not at every layer and step.
    _masks: dict[tuple[int, int], tuple[torch.Tensor, list[torch.Tensor]]] = field(default_factory=dict, repr=False)
    _masks_for: tuple[int, ...] = ()

    def is_active(self, layer: int) -> bool:
        return layer >= self.config.first_layer and self.state.step >= self.config.start_step

    def sources(self, n: int) -> tuple[int, ...]:
        return self.routing.tracks.sources(n) if self.routing is not None else self.config.policy.sources(n)

    def bias(self, n: int, sources: tuple[int, ...], *, forgetting: bool = True) -> list[float]:
        """Per-source logit bias: condition similarity (eq. 4.1-4.2), forgetting (unless routed, where it
        is per track) and the gain."""
        policy = self.config.policy
        bias = [(policy.log_weight(n, m) if forgetting else 0.0) + self.config.gain for m in sources]
        if self.config.strength and len(sources) > 1:
            c_n = self.conditions[n]
            cos = torch.stack([F.cosine_similarity(c_n, self.conditions[m], dim=-1) for m in sources])
            # log(k * p_m): 0 for every source when all are equally similar (a weighting, not a switch)
            logp = torch.log_softmax(cos.float() / self.config.tau, dim=0) + math.log(len(sources))
            bias = [b + self.config.strength * float(lp) for b, lp in zip(bias, logp, strict=True)]
        return bias

    def _indices(self, panel: int, layer: int, num_tokens: int) -> torch.Tensor | None:
        """The panel's memory tokens (None: all); routed, the regions replace the subject mask."""
        subject = self.config.subject_mask and self.routing is None
        return select_tokens(
            panel, layer, self.state.step, num_tokens, self.state.latent_hw, self.config.token_budget,
            self.subject_masks.get(panel) if subject else None,
        )

    def _shared(self, panel: int, layer: int, t: torch.Tensor, num_tokens: int) -> torch.Tensor:
        idx = self._indices(panel, layer, num_tokens)
        return t if idx is None else t.index_select(2, idx.to(t.device))

    def _cached_mask(self, routing: Routing, n: int, sources: tuple[int, ...], layer: int, num_tokens: int,
                     sizes: list[int], like: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(mask, read): the routed mask over own tokens and the memory tokens some own token reads, as
        ``like``'s device and dtype, and per source (holding ``sizes`` tokens) the indices of those tokens.
        Tokens no route reaches are left out of the attention (exact: their weight is exp(-inf) = 0), so its
        cost follows the regions read, not the panels. Kept while the same panels are denoised when the
        token budget picks no tokens (the mask's only dependence on layer and step)."""
        key = (n, num_tokens)
        if self.config.token_budget is None:
            if self._masks_for != self.state.panels:  # a new chunk: the old chunk's masks are not read again
                self._masks, self._masks_for = {}, self.state.panels
            if key in self._masks:
                return self._masks[key]
        mask = self._routed_mask(routing, n, sources, layer, num_tokens)
        columns, read, start = [mask[:, :num_tokens]], [], num_tokens
        for size in sizes:
            part = mask[:, start : start + size]
            read.append(torch.nonzero(torch.isfinite(part).any(dim=0)).flatten().to(like.device))
            columns.append(part.index_select(1, read[-1].to(part.device)))
            start += size
        out = (torch.cat(columns, dim=1).to(device=like.device, dtype=like.dtype), read)
        if self.config.token_budget is None:
            self._masks[key] = out
        return out

    def _routed_mask(self, routing: Routing, n: int, sources: tuple[int, ...], layer: int,
                     num_tokens: int) -> torch.Tensor:
        """(tokens, tokens + memory tokens) additive mask of panel n over its own and routed memory tokens."""
        grid = layer_grid(num_tokens, self.state.latent_hw)
        own = routing.labels(n, grid)
        routes = routing.tracks.routes(n)
        parts = [torch.zeros(num_tokens, num_tokens, device=own.device)]
        for m, b in zip(sources, self.bias(n, sources, forgetting=False), strict=True):
            labels = routing.labels(m, grid)
            idx = self._indices(m, layer, num_tokens)
            parts.append(memory_mask(own, labels if idx is None else labels[idx.to(labels.device)],
                                     [r for r in routes if r.source == m], b))
        return torch.cat(parts, dim=1)

    def _bias_row(self, n: int, sources: tuple[int, ...], num_tokens: int, sizes: list[int],
                  like: torch.Tensor) -> torch.Tensor | None:
        """Additive (1, 1, 1, own + memory tokens) mask with each source's bias on its tokens; None if all are 0."""
        if not any(bias := self.bias(n, sources)):
            return None
        parts = [torch.zeros(num_tokens)] + [torch.full((size,), b) for size, b in zip(sizes, bias, strict=True)]
        return torch.cat(parts).to(device=like.device, dtype=like.dtype)[None, None, None, :]

    def _readers(self, n: int, num_tokens: int) -> torch.Tensor | None:
        """With the subject mask, panel n's own tokens that read the memory (its subject's); None: all of them.
        The others attend to their own panel alone, so backgrounds keep their own look however strongly the
        subject shares."""
        subject = self.subject_masks.get(n) if self.config.subject_mask else None
        return None if subject is None else subject_tokens(subject, num_tokens, self.state.latent_hw)

    def _guided(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        """One panel's (branches, heads, tokens, dim) MAGA output from its own q, k, v and the ``keys``/``values`` of
        the branches that read the memory (the conditional one alone at memory guidance 1). With memory guidance w and
        CFG, the unconditional branch (first) is (1 - w) * MAGA + w * plain."""
        w = self.config.memory_guidance
        if not w or self.state.branches != 2:
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        plain = F.scaled_dot_product_attention(q[:1], k[:1], v[:1])
        if w == 1:
            return torch.cat([plain, F.scaled_dot_product_attention(q[1:], keys, values, attn_mask=mask)])
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return torch.cat([torch.lerp(out[:1], plain, w), out[1:]])

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Self-attention for a (branches*panels, heads, tokens, dim) batch."""
        if not self.is_active(layer):
            return F.scaled_dot_product_attention(q, k, v)
        st = self.state
        g, p = st.branches, len(st.panels)
        q, k, v = (x.unflatten(0, (g, p)) for x in (q, k, v))
        n_tok = k.shape[3]
        rows = slice(g - self.config.memory_branches(g), None)  # the branches that read (and keep) memory
        slot = {n: i for i, n in enumerate(st.panels)}
        shared: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def kv_of(m: int) -> tuple[torch.Tensor, torch.Tensor]:
            if m not in shared:
                if m in slot:
                    i = slot[m]
                    shared[m] = (self._shared(m, layer, k[rows, i], n_tok), self._shared(m, layer, v[rows, i], n_tok))
                else:
                    shared[m] = self.memory.get(m, layer, st.step)
            return shared[m]

        outs = []
        for i, n in enumerate(st.panels):
            sources = self.sources(n)
            if not sources:
                outs.append(F.scaled_dot_product_attention(q[:, i], k[:, i], v[:, i]))
                continue
            mem = [kv_of(m) for m in sources]
            if self.routing is not None:
                mask, read = self._cached_mask(self.routing, n, sources, layer, n_tok, [mk.shape[2] for mk, _ in mem], q)
                mask = mask[None, None]
                pairs = list(zip(mem, read, strict=True))
                keys = torch.cat([k[rows, i], *(mk.index_select(2, r.to(mk.device)).to(k) for (mk, _), r in pairs)],
                                 dim=2)
                values = torch.cat([v[rows, i], *(mv.index_select(2, r.to(mv.device)).to(v) for (_, mv), r in pairs)],
                                   dim=2)
            else:
                keys = torch.cat([k[rows, i], *(mk.to(k.dtype) for mk, _ in mem)], dim=2)
                values = torch.cat([v[rows, i], *(mv.to(v.dtype) for _, mv in mem)], dim=2)
                mask = self._bias_row(n, sources, n_tok, [mk.shape[2] for mk, _ in mem], q)
                if (readers := self._readers(n, n_tok)) is not None:
                    readers = readers.to(q.device)
                    subject = self._guided(q[:, i].index_select(2, readers), k[:, i], v[:, i], keys, values, mask)
                    plain = F.scaled_dot_product_attention(q[:, i], k[:, i], v[:, i])
                    outs.append(plain.index_copy(2, readers, subject))
                    continue
            outs.append(self._guided(q[:, i], k[:, i], v[:, i], keys, values, mask))
        for n in st.write:
            km, vm = kv_of(n)
            self.memory.put(n, layer, st.step, km, vm)
        self.calls += 1
        return torch.stack(outs, dim=1).flatten(0, 1)


class MAGAProcessor:
    """diffusers attention processor for a UNet ``attn1``; plain unless its run says otherwise."""

    def __init__(self, run: MAGARun, layer: int) -> None:
        self.run = run
        self.layer = layer

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            # Not self-attention as SD uses it; MAGA has nothing to share here.
            return AttnProcessor2_0()(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        head_dim = k.shape[-1] // attn.heads
        q, k, v = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (q, k, v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        out = self.run.attend(self.layer, q, k, v)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install(unet: torch.nn.Module, run: MAGARun) -> dict[str, object]:
    """Put MAGA processors on the UNet's self-attention layers; return the previous processors.

    Cross-attention keeps SDPA; the ControlNet is a separate module and is left alone.
    """
    previous = dict(unet.attn_processors)
    layers = self_attention_layers(list(previous))
    index = {name: i for i, name in enumerate(layers)}
    unet.set_attn_processor(
        {name: MAGAProcessor(run, index[name]) if name in index else AttnProcessor2_0() for name in previous}
    )
    return previous
