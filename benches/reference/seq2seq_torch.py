#!/usr/bin/env python3
"""The PyTorch column of `s2s bench`: the same encoder-decoder Transformer as s2s, written in
plain `torch.nn` (PyTorch eager, no compilation), trained on the same token batches and decoded
greedily and with beam search over a key/value cache.

`s2s bench --config F --backends ...,pytorch` writes the input file (model shape, optimizer,
the token batches of the timed steps, the validation sources to decode) and runs this script
with the Python of `scripts/setup-tch.sh`'s venv. It prints one JSON line, the same fields as
an s2s backend's worker:

    python3 benches/reference/seq2seq_torch.py INPUT.json

The model mirrors s2s-model (crates/s2s-model/src): token embedding x sqrt(d_model) plus
sinusoidal or learned positions, pre-norm (or post-norm) layers of self-attention,
cross-attention and a ReLU/GELU feed-forward, a final LayerNorm for pre-norm stacks, the output
projection tied to the target embedding or not. Attention is
`torch.nn.functional.scaled_dot_product_attention`, as `nn.MultiheadAttention` and current
PyTorch models use it. Training: label-smoothed cross-entropy over non-pad tokens
(`CrossEntropyLoss(ignore_index=pad, label_smoothing=eps)`, the same objective as s2s), Adam
with the config's betas/epsilon (PyTorch's default implementation), the Noam schedule, and
gradient clipping with `clip_grad_norm_` (PyTorch's global norm; s2s/Burn clip each tensor to
the norm, which costs the same kind of work).

With `[model] family = "rnn"` the model is s2s's RNN family in idiomatic PyTorch: a (bi)directional
`nn.LSTM`/`nn.GRU` encoder over packed sequences (`pack_padded_sequence`, PyTorch's fused
multi-layer kernel), a bridge `tanh(W s + b)` from its final states, and a decoder of
`nn.LSTMCell`/`nn.GRUCell` layers with Luong (general) or Bahdanau (additive) attention and
input feeding, stepped in Python as every PyTorch seq2seq tutorial and OpenNMT-py do.
"""

import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Embedding(nn.Module):
    def __init__(self, vocab, d_model, max_positions, positions, dropout):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.tokens.weight, 0.0, d_model**-0.5)
        self.scale = math.sqrt(d_model)
        self.learned = None
        if positions == "learned":
            self.learned = nn.Embedding(max_positions, d_model)
            nn.init.normal_(self.learned.weight, 0.0, d_model**-0.5)
        else:
            pos = torch.arange(max_positions, dtype=torch.float64).unsqueeze(1)
            i = torch.arange(d_model)
            angle = pos / torch.pow(10000.0, (2 * (i // 2)).double() / d_model)
            table = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
            self.register_buffer("sinusoids", table, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids, offset=0):
        length = ids.shape[1]
        x = self.tokens(ids) * self.scale
        if self.learned is not None:
            x = x + self.learned.weight[offset : offset + length]
        else:
            x = x + self.sinusoids[offset : offset + length]
        return self.dropout(x)


class Attention(nn.Module):
    def __init__(self, d_model, n_heads, dropout):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        for linear in (self.query, self.key, self.value, self.output):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.dropout = dropout

    def heads(self, x):  # [B, T, D] -> [B, H, T, Dh]
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)

    def project_kv(self, memory):
        return self.heads(self.key(memory)), self.heads(self.value(memory))

    def attend(self, q, k, v, mask=None, causal=False):
        # mask: bool, True where a key may be attended (SDPA's convention), broadcastable.
        p = self.dropout if self.training else 0.0
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        b, _, t, _ = ctx.shape
        return self.output(ctx.transpose(1, 2).reshape(b, t, self.n_heads * self.d_head))


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout, activation):
        super().__init__()
        self.inner = nn.Linear(d_model, d_ff)
        self.outer = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        self.act = F.gelu if activation == "gelu" else F.relu

    def forward(self, x):
        return self.outer(self.dropout(self.act(self.inner(x))))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model_encoder"]
        self.self_attn = Attention(d, c["n_heads_encoder"], c["attention_dropout"])
        self.ffn = FeedForward(d, c["d_ff_encoder"], c["dropout"], c["activation"])
        self.self_attn_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.ffn_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["dropout"])
        self.norm_first = c["norm_first"]

    def sa(self, h, mask):
        q = self.self_attn.heads(self.self_attn.query(h))
        k, v = self.self_attn.project_kv(h)
        return self.self_attn.attend(q, k, v, mask)

    def forward(self, x, mask):
        if self.norm_first:
            x = x + self.dropout(self.sa(self.self_attn_norm(x), mask))
            return x + self.dropout(self.ffn(self.ffn_norm(x)))
        x = self.self_attn_norm(x + self.dropout(self.sa(x, mask)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model_decoder"]
        self.self_attn = Attention(d, c["n_heads_decoder"], c["attention_dropout"])
        self.cross_attn = Attention(d, c["n_heads_decoder"], c["attention_dropout"])
        self.ffn = FeedForward(d, c["d_ff_decoder"], c["dropout"], c["activation"])
        self.self_attn_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.cross_attn_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.ffn_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["dropout"])
        self.norm_first = c["norm_first"]

    def forward(self, x, self_attention, memory_kv, memory_mask):
        def cross(h):
            q = self.cross_attn.heads(self.cross_attn.query(h))
            return self.cross_attn.attend(q, memory_kv[0], memory_kv[1], memory_mask)

        if self.norm_first:
            x = x + self.dropout(self_attention(self.self_attn_norm(x)))
            x = x + self.dropout(cross(self.cross_attn_norm(x)))
            return x + self.dropout(self.ffn(self.ffn_norm(x)))
        x = self.self_attn_norm(x + self.dropout(self_attention(x)))
        x = self.cross_attn_norm(x + self.dropout(cross(x)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


class Seq2Seq(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.source_embedding = Embedding(
            c["source_vocab"], c["d_model_encoder"], c["max_positions"], c["positions"], c["dropout"]
        )
        self.target_embedding = Embedding(
            c["target_vocab"], c["d_model_decoder"], c["max_positions"], c["positions"], c["dropout"]
        )
        self.encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c["n_layers_encoder"]))
        self.decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c["n_layers_decoder"]))
        eps = c["layer_norm_eps"]
        self.encoder_norm = nn.LayerNorm(c["d_model_encoder"], eps=eps) if c["norm_first"] else None
        self.decoder_norm = nn.LayerNorm(c["d_model_decoder"], eps=eps) if c["norm_first"] else None
        if c["adapter"] == "linear":
            self.adapter = nn.Linear(c["d_model_encoder"], c["d_model_decoder"])
        else:
            self.adapter = None
        self.output = None
        if not c["tie_output_embedding"]:
            self.output = nn.Linear(c["d_model_decoder"], c["target_vocab"], bias=False)
            nn.init.xavier_uniform_(self.output.weight)

    def encode(self, source, pad):
        # [B, 1, 1, S]: True where the key is a real token.
        mask = (~pad)[:, None, None, :]
        x = self.source_embedding(source)
        for layer in self.encoder:
            x = layer(x, mask)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        if self.adapter is not None:
            x = self.adapter(x)
        return x, mask

    def project_memory(self, memory):
        return [layer.cross_attn.project_kv(memory) for layer in self.decoder]

    def logits(self, h):
        if self.decoder_norm is not None:
            h = self.decoder_norm(h)
        weight = self.target_embedding.tokens.weight if self.output is None else self.output.weight
        return F.linear(h, weight)

    def forward(self, source, pad, target_input):
        memory, mask = self.encode(source, pad)
        memory_kv = self.project_memory(memory)
        x = self.target_embedding(target_input)
        for layer, kv in zip(self.decoder, memory_kv):

            def self_attention(h, layer=layer):
                q = layer.self_attn.heads(layer.self_attn.query(h))
                k, v = layer.self_attn.project_kv(h)
                return layer.self_attn.attend(q, k, v, causal=True)

            x = layer(x, self_attention, kv, mask)
        return self.logits(x)

    def decode_step(self, tokens, memory_kv, mask, cache, length):
        """One incremental step: `tokens` [N, 1] at position `length`; `cache` holds every
        layer's preallocated [N, H, capacity, Dh] keys and values."""
        x = self.target_embedding(tokens, length)
        for index, (layer, kv) in enumerate(zip(self.decoder, memory_kv)):

            def self_attention(h, layer=layer, index=index):
                q = layer.self_attn.heads(layer.self_attn.query(h))
                k, v = layer.self_attn.project_kv(h)
                keys, values = cache[index]
                keys[:, :, length : length + 1] = k
                values[:, :, length : length + 1] = v
                return layer.self_attn.attend(q, keys[:, :, : length + 1], values[:, :, : length + 1])

            x = layer(x, self_attention, kv, mask)
        return self.logits(x)[:, -1]

    def new_cache(self, rows, capacity):
        c = self.c
        h, dh = c["n_heads_decoder"], c["d_model_decoder"] // c["n_heads_decoder"]
        return [
            (torch.zeros(rows, h, capacity, dh), torch.zeros(rows, h, capacity, dh))
            for _ in self.decoder
        ]

    def start(self, ids, pad, k, capacity):
        """Encodes a batch for decoding with `k` rows per source: returns `step(tokens, length)`
        (the next position's logits) and `reorder(rows)` (rows follow their beams)."""
        memory, mask = self.encode(ids, pad)
        if k > 1:
            memory = memory.repeat_interleave(k, dim=0)
            mask = mask.repeat_interleave(k, dim=0)
        memory_kv = self.project_memory(memory)
        cache = self.new_cache(memory.shape[0], capacity)

        def step(tokens, length):
            return self.decode_step(tokens, memory_kv, mask, cache, length)

        def reorder(rows):
            for keys, values in cache:
                keys.copy_(keys.index_select(0, rows))
                values.copy_(values.index_select(0, rows))

        return step, reorder

    def d_model(self):
        return self.c["d_model_decoder"]


class RnnSeq2Seq(nn.Module):
    """s2s's RNN family (crates/s2s-model/src/rnn)."""

    def __init__(self, c):
        super().__init__()
        r = c["rnn"]
        self.c = c
        E, H, L = r["embedding_size"], r["hidden_size"], r["n_layers"]
        self.H, self.L = H, L
        self.lstm = r["cell"] == "lstm"
        self.directions = 2 if r["bidirectional"] else 1
        M = self.directions * H
        # N(0, 1) embeddings, PyTorch's default, as s2s initialises them.
        self.source_embedding = nn.Embedding(c["source_vocab"], E)
        self.target_embedding = nn.Embedding(c["target_vocab"], E)
        self.dropout = nn.Dropout(c["dropout"])
        rnn, cell = (nn.LSTM, nn.LSTMCell) if self.lstm else (nn.GRU, nn.GRUCell)
        self.encoder = rnn(
            E, H, num_layers=L, bidirectional=self.directions == 2, batch_first=True,
            dropout=c["dropout"] if L > 1 else 0.0,
        )
        self.cells = nn.ModuleList(cell(E + H if i == 0 else H, H) for i in range(L))
        self.bridge_h = nn.Linear(M, H) if M != H else None
        self.bridge_c = nn.Linear(M, H) if M != H and self.lstm else None
        if r["attention"] == "luong":
            self.key, self.query, self.v = nn.Linear(M, H, bias=False), None, None
        else:
            self.key = nn.Linear(M, H)
            self.query = nn.Linear(H, H, bias=False)
            self.v = nn.Linear(H, 1, bias=False)
        self.combine = nn.Linear(M + H, H, bias=False)
        self.output = None
        if not c["tie_output_embedding"]:
            self.output = nn.Linear(H, c["target_vocab"], bias=False)

    def d_model(self):
        return self.H

    def encode(self, source, pad):
        lengths = (~pad).sum(1)
        x = self.dropout(self.source_embedding(source))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, hidden = self.encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=source.shape[1]
        )

        def per_layer(h):  # [L * dirs, B, H] -> [L, B, dirs * H]
            h = h.view(self.L, self.directions, h.shape[1], self.H)
            return torch.cat([h[:, d] for d in range(self.directions)], -1)

        h, c = (hidden if self.lstm else (hidden, None))
        h = per_layer(h)
        c = per_layer(c) if c is not None else None
        if self.bridge_h is not None:
            h = torch.tanh(self.bridge_h(h))
            c = torch.tanh(self.bridge_c(c)) if c is not None else None
        return (states, self.key(states), pad), (h, c)

    def new_state(self, initial):
        h, c = initial
        return {
            "h": list(h.unbind(0)),
            "c": list(c.unbind(0)) if c is not None else None,
            "feed": torch.zeros(h.shape[1], self.H),
        }

    def step(self, embedded, memory, state):
        states, keys, pad = memory
        x = torch.cat([embedded, state["feed"]], -1)
        for i, cell in enumerate(self.cells):
            if self.lstm:
                h, c = cell(x, (state["h"][i], state["c"][i]))
                state["c"][i] = c
            else:
                h = cell(x, state["h"][i])
            state["h"][i] = h
            x = self.dropout(h) if i + 1 < self.L else h
        if self.query is None:
            scores = torch.bmm(keys, x.unsqueeze(2)).squeeze(2)
        else:
            scores = self.v(torch.tanh(keys + self.query(x).unsqueeze(1))).squeeze(2)
        alpha = torch.softmax(scores.masked_fill(pad, -1e9), -1)
        context = torch.bmm(alpha.unsqueeze(1), states).squeeze(1)
        out = self.dropout(torch.tanh(self.combine(torch.cat([context, x], -1))))
        state["feed"] = out
        return out

    def logits(self, h):
        weight = self.target_embedding.weight if self.output is None else self.output.weight
        return F.linear(h, weight)

    def forward(self, source, pad, target_input):
        memory, initial = self.encode(source, pad)
        state = self.new_state(initial)
        embedded = self.dropout(self.target_embedding(target_input))
        outs = [self.step(embedded[:, t], memory, state) for t in range(embedded.shape[1])]
        return self.logits(torch.stack(outs, 1))

    def start(self, ids, pad, k, capacity):
        (states, keys, pad), (h, c) = self.encode(ids, pad)
        if k > 1:
            states, keys, pad = (t.repeat_interleave(k, dim=0) for t in (states, keys, pad))
            h = h.repeat_interleave(k, dim=1)
            c = c.repeat_interleave(k, dim=1) if c is not None else None
        memory = (states, keys, pad)
        state = self.new_state((h, c))

        def step(tokens, length):
            embedded = self.dropout(self.target_embedding(tokens[:, 0]))
            return self.logits(self.step(embedded, memory, state))

        def reorder(rows):
            for key in ("h", "c"):
                if state[key] is not None:
                    state[key] = [t.index_select(0, rows) for t in state[key]]
            state["feed"] = state["feed"].index_select(0, rows)

        return step, reorder


def pad_rows(rows, pad):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    return ids, torch.arange(width)[None, :] >= lengths[:, None]


@torch.no_grad()
def generate(model, sources, special, max_new_tokens, num_beams, batch_size):
    """Greedy (num_beams = 1) or beam search over the KV cache; `</s>` is suppressed for the
    first `max_new_tokens` tokens, so every hypothesis has exactly that many (the benchmark's
    fixed amount of work, as `min_new_tokens` in s2s and HF). Returns the best hypothesis of
    each source."""
    out = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start : start + batch_size]
        ids, pad = pad_rows(chunk, special["pad"])
        n, k = len(chunk), num_beams
        step_logits, reorder = model.start(ids, pad, k, max_new_tokens + 1)
        rows = n * k
        tokens = torch.full((rows, 1), special["bos"], dtype=torch.long)
        scores = torch.zeros(n, k)
        if k > 1:
            scores[:, 1:] = -math.inf  # all beams start identical: keep one
        history = torch.empty(rows, 0, dtype=torch.long)
        for step in range(max_new_tokens):
            logits = step_logits(tokens, step)
            logits[:, special["eos"]] = -math.inf
            if k == 1:
                next_tokens = logits.argmax(-1, keepdim=True)
                history = torch.cat([history, next_tokens], 1)
                tokens = next_tokens
                continue
            log_probs = F.log_softmax(logits, -1)
            vocab = log_probs.shape[-1]
            candidates = (scores.view(rows, 1) + log_probs).view(n, k * vocab)
            scores, flat = candidates.topk(k, dim=1)
            beam = flat // vocab
            token = flat % vocab
            rows_from = (torch.arange(n)[:, None] * k + beam).view(rows)
            reorder(rows_from)
            history = torch.cat([history.index_select(0, rows_from), token.view(rows, 1)], 1)
            tokens = token.view(rows, 1)
        best = history.view(n, k, -1)[:, 0] if k > 1 else history
        out.extend(best.tolist())
    return out


def learning_rate(step, t, d_model):
    """The rate of optimizer step `step` (1-based) of `training.lr_schedule`, as s2s's
    Schedule::lr_at (crates/s2s-train/src/optim.rs)."""
    w, total = t["warmup_steps"], t["total_steps"]
    kind = t["lr_schedule"]
    if kind == "noam":
        return t["lr_factor"] * d_model**-0.5 * min(step**-0.5, step * w**-1.5)
    if kind == "inverse_sqrt":
        return t["lr"] * min(step / w, (w / step) ** 0.5)
    if step < w:
        return t["lr"] * step / w
    done = 1.0 if total <= w else min(max((step - w) / (total - w), 0.0), 1.0)
    low, high = t["min_lr"], t["lr"]
    if kind == "linear":
        return low + (high - low) * (1.0 - done)
    return low + (high - low) * 0.5 * (1.0 + math.cos(math.pi * done))  # cosine


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: seq2seq_torch.py INPUT.json (written by s2s bench)")
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    threads = spec["threads"]
    torch.set_num_threads(threads)
    torch.manual_seed(spec["seed"])
    c, t, special = spec["model"], spec["training"], spec["special"]

    model = RnnSeq2Seq(c) if c.get("family") == "rnn" else Seq2Seq(c)
    parameters = sum(p.numel() for p in model.parameters())
    # Adam's weight decay is an L2 term on the gradient, AdamW's decoupled (training.optimizer).
    make = torch.optim.AdamW if t["optimizer"] == "adamw" else torch.optim.Adam
    optimizer = make(
        model.parameters(),
        lr=0.0,
        betas=(t["adam_beta1"], t["adam_beta2"]),
        eps=t["adam_epsilon"],
        weight_decay=t["weight_decay"],
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=special["pad"], label_smoothing=t["label_smoothing"])
    batches = []
    for b in spec["batches"]:
        source = torch.tensor(b["source"], dtype=torch.long)
        batches.append(
            (
                source,
                torch.tensor(b["source_pad"], dtype=torch.bool),
                torch.tensor(b["target_input"], dtype=torch.long),
                torch.tensor(b["target_labels"], dtype=torch.long),
            )
        )

    model.train()
    losses, times, target_tokens, all_tokens = [], [], 0, 0
    warmup = spec["warmup_steps"]
    for step, (source, pad, target_input, labels) in enumerate(batches, start=1):
        started = time.perf_counter()
        logits = model(source, pad, target_input)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t["grad_clip_norm"] > 0:
            if t["grad_clip_kind"] == "global":
                torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip_norm"])
            else:  # per_tensor, as burn's GradientClipping::Norm
                for p in model.parameters():
                    torch.nn.utils.clip_grad_norm_([p], t["grad_clip_norm"])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, t, model.d_model())
        optimizer.step()
        value = loss.item()
        seconds = time.perf_counter() - started
        losses.append(value)
        if step > warmup:
            times.append(seconds)
            targets = int((labels != special["pad"]).sum())
            target_tokens += targets
            all_tokens += targets + int((~pad).sum())
        print(f"pytorch step {step}/{len(batches)}: loss {value:.4f}, {seconds * 1e3:.1f} ms", file=sys.stderr)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2

    model.eval()
    d = spec["decode"]
    sources = d["sources"]

    def decode(num_beams):
        generate(model, sources[:2], special, d["tokens"], num_beams, d["batch_size"])  # warm-up
        started = time.perf_counter()
        hyps = generate(model, sources, special, d["tokens"], num_beams, d["batch_size"])
        seconds = time.perf_counter() - started
        tokens = sum(len(h) for h in hyps)
        return tokens / seconds, seconds, tokens

    greedy_tps, greedy_s, greedy_tokens = decode(1)
    beam_tps, beam_s, _ = decode(d["num_beams"])
    result = {
        "parameters": parameters,
        "median_step_seconds": median,
        "train_tokens_per_second": target_tokens / n / median,
        "train_all_tokens_per_second": all_tokens / n / median,
        "losses": losses,
        "decode_tokens_per_second": greedy_tps,
        "decode_seconds": greedy_s,
        "decode_tokens": greedy_tokens,
        "beam_tokens_per_second": beam_tps,
        "beam_seconds": beam_s,
        "num_beams": d["num_beams"],
    }
    line = {
        "backend": "pytorch",
        "device": f"cpu (PyTorch {torch.__version__} eager, torch.nn, {torch.get_num_threads()} threads)",
        "result": result,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
