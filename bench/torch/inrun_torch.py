#!/usr/bin/env python3
"""PyTorch side of `npm run bench`: the bench's workloads in PyTorch, and the paper's ghost method.

Started by bench/torch/client.ts, one process per thread count; never a test or runtime
dependency of inrun. Needs PyTorch (Debian: `apt-get install python3-torch`) and nothing else.

Protocol: one JSON object per line on stdin, one JSON object per line on stdout (errors as
{"error": "..."}; the process then keeps serving).
  {"cmd": "setup", "id": "mlp", "file": "/tmp/....safetensors", "spec": {...}}
      Loads inrun's initial weights and the data (train.x, train.y, val.x, val.y) from a
      safetensors file written by the bench, builds the model and the step functions.
      spec: {"kind": "mlp", "sizes": [784, 512, 512, 10], "lr": 0.01, "batch": 256,
             "validation": 256, "smallValidation": 32}
         or {"kind": "gpt", "vocab", "context", "layers", "heads", "width", "batch", "validation",
             "adamw": {"lr", "weightDecay", "clipNorm", "betas", "eps"}}
         or {"kind": "cnn", "image": [1, 28, 28], "classes": 10, "width": 6, "kernel": 5,
             "hidden": [120, 84], "lr": 0.01, "batch": 64, "validation": 64}   (inrun's LeNet-5)
      Optional "routeRule" (see choose_pairwise; default "cost") picks the ghost routes.
  {"cmd": "values", "id": ..., "order": 1 | 2, "optimizer": "sgd" | "adamw", "lr": η,
   "validation": m, "adamw": {"eps": ...} (optional overrides of the setup's AdamW options),
   "rule": ... (optional: the route rule of this request, e.g. "pairwise" on every layer)}
      Values of the first training batch at the initial weights, by the same code the timed
      steps run (the bench compares them with inrun's): {"values": [...], "routes": {...}}.
  {"cmd": "time", "id": ..., "config": "plain" | ..., "steps": k}
      k steps of one configuration, each timed on its own: {"ms": [...]}.
  {"cmd": "quit"}

Each setup keeps its own model and optimizer per configuration, so configurations never share
state (as the inrun side, where every configuration has its own Trainer).

Ghost products (the paper's method, as its released code GhostSuite does it): the training and
validation batches go through ONE forward and ONE backward of the summed per-example losses;
forward hooks on every parameterised module (Linear, LayerNorm, Embedding, Conv2d) keep its
input A, and the backward returns the gradient G of its output (torch.autograd.grad on the
hooked outputs, so autograd computes no weight gradients at all). Weight gradients are then
rebuilt from the training rows of A and G ("book-keeping"), and per-example values from
  pairwise: <g_i, g_V> = sum_{t,s} (A_i A_v^T)_{ts} (G_i G_v^T)_{ts}   (scalar K only)
  vector:   <g_i, U>   = sum_t <G_{i,t}, U A_{i,t}>
per layer, summed over layers (a Conv2d is a Linear over its P output positions, A_i the
unfolded patches; see Conv2dRule). Route choice: 'cost' takes the cheaper by multiply-adds (the
vector route also pays for the validation gradient of that weight, as inrun's rule does when a
pairwise layer skips that gradient: checkPairwiseLayers false); 'inrun' takes the cheaper by
inrun's ghostCost alone (its rule when every layer forms the validation gradient for the
efficiency check, the default); 'ghostsuite' is the released code's rule, pairwise when
2 T^2 <= weight.numel(). LayerNorm, biases and embeddings use their cheap per-example gradients;
the tied lm_head/wte weight takes the vector route with U of the whole tied weight (both uses),
which is exact (GhostSuite dots each use separately and so misses the cross terms). Everything
is float32, where GhostSuite casts the dot-product path to bfloat16 (spec "dtype": "float64" is
for checking implementations without float32 rounding).

Values follow inrun (DESIGN.md section 2): phi_i = <g_i, u>, with u = eta K g_V (first order) or
u = K (eta g_V - eta^2 H_V (c + K g_B / 2)) (second order), g_B the summed per-example training
gradient, g_V the mean validation gradient, H_V the Hessian of the mean validation loss. Second
order runs the hooked forward/backward on the training batch alone and one validation forward
whose gradient is taken with create_graph=True: that gives g_V, and a second backward of
<g_V, x> gives the one Hessian-vector product per step (double backward; forward-over-reverse is
no faster on the MLP and PyTorch 1.13 has no forward-mode LayerNorm backward). u is not a
multiple of g_V, so every layer takes the vector route. For AdamW K = kappa/|B| diag(P (1-b1)/bc1)
with P = 1/(sqrt(v_t/bc2) + eps) from this step's gradient and c = P b1 m_{t-1}/bc1 + lambda w,
as inrun's Adam plan; the 'paper' variant values with the SGD formula (u = eta/|B| g_V) as the
paper does for Adam.
"""

import json
import math
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_grad_enabled(True)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": torch.float32, "F64": torch.float64}[info["dtype"]]
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


# ---------------------------------------------------------------------------------------------
# Models with inrun's parameter names, so inrun's weights load with load_state_dict.


class Mlp(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        mods = []
        for k in range(len(sizes) - 1):
            mods.append(nn.Linear(sizes[k], sizes[k + 1]))
            if k < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)

    def example_losses(self, x, y):
        """Per-example losses [n]."""
        return F.cross_entropy(self(x), y, reduction="none")


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.Module()
        self.attn.ln_1 = nn.LayerNorm(d)
        self.attn.c_attn = nn.Linear(d, 3 * d)
        self.attn.c_proj = nn.Linear(d, d)
        self.mlp = nn.Module()
        self.mlp.ln_2 = nn.LayerNorm(d)
        self.mlp.c_fc = nn.Linear(d, 4 * d)
        self.mlp.c_proj = nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        n, T, d = x.shape
        H = self.heads
        qkv = self.attn.c_attn(self.attn.ln_1(x))
        q, k, v = qkv.split(d, dim=2)
        q = q.view(n, T, H, d // H).transpose(1, 2)
        k = k.view(n, T, H, d // H).transpose(1, 2)
        v = v.view(n, T, H, d // H).transpose(1, 2)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // H))
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        p = s.masked_fill(mask, float("-inf")).softmax(dim=-1)
        o = (p @ v).transpose(1, 2).reshape(n, T, d)
        x = x + self.attn.c_proj(o)
        x = x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.mlp.ln_2(x)), approximate="tanh"))
        return x


class Gpt(nn.Module):
    """GPT-2 as inrun's gpt(): pre-norm blocks, GELU (tanh), tied head, mean token loss per sequence."""

    def __init__(self, vocab, context, layers, heads, width):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.h = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        T = ids.shape[1]
        # Positions per example, so the hooked wpe output has per-example gradients.
        x = self.wte(ids) + self.wpe(torch.arange(T).expand(ids.shape[0], T))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def example_losses(self, ids, targets):
        logits = self(ids)
        n, T, V = logits.shape
        return F.cross_entropy(logits.reshape(n * T, V), targets.reshape(n * T), reduction="none").view(n, T).mean(1)


class LeNet(nn.Module):
    """inrun's cnn({kind: "lenet"}) (src/models/cnn.ts): conv1 (k x k, "same" padding) -> ReLU ->
    2x2 max pool -> conv2 (k x k) -> ReLU -> 2x2 max pool -> flatten (channels first) -> fc1 ->
    ReLU -> ... -> fc_last. Images [n, C, H, W]."""

    def __init__(self, image, classes, width=6, kernel=5, hidden=(120, 84)):
        super().__init__()
        channels, height, side = image
        self.conv1 = nn.Conv2d(channels, width, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(width, math.ceil(8 * width / 3), kernel)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, side)).shape[1]
        self.fcs = []
        for i, h in enumerate([*hidden, classes]):
            fc = nn.Linear(flat, h)
            setattr(self, f"fc{i + 1}", fc)  # inrun's parameter names: fc1.weight, ...
            self.fcs.append(fc)
            flat = h

    def features(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)

    def forward(self, x):
        x = self.features(x)
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x))
        return self.fcs[-1](x)

    def example_losses(self, x, y):
        return F.cross_entropy(self(x), y, reduction="none")


# ---------------------------------------------------------------------------------------------
# Ghost rules, one per layer type (as Opacus's grad_sample/): everything the ghost method knows
# about a parameterised layer: what its record keeps as A, its book-keeping gradient, its vector
# route, its pairwise route (Linear, Conv2d) and that route's cost. The machinery below them
# (Capture, ghost_pass, bookkeeping_grads, vector_dots) never special-cases a layer.


def as3(t):
    """[n, d] -> [n, 1, d]; [n, T, d] unchanged."""
    return t.unsqueeze(1) if t.dim() == 2 else t


def add_grad(grads, p, g):
    if p in grads:
        grads[p] = grads[p] + g
    else:
        grads[p] = g


class LinearRule:
    """nn.Linear on [n, d] or [n, T, d] inputs."""

    @staticmethod
    def prepare(module, A):
        return A

    @staticmethod
    def add_grads(module, A, G, rows, scale, grads, with_weight):
        g = as3(G)[rows]
        if with_weight:
            a = as3(A)[rows]
            add_grad(grads, module.weight, scale * (g.reshape(-1, g.shape[-1]).t() @ a.reshape(-1, a.shape[-1])))
        if module.bias is not None:
            add_grad(grads, module.bias, scale * g.sum((0, 1)))

    @staticmethod
    def vector_dots(module, A, G, n, U, out):
        g = as3(G)[:n]
        Uw = U.get(module.weight)
        if Uw is not None:
            out += ((as3(A)[:n] @ Uw.t()) * g).sum((1, 2))
        if module.bias is not None:
            out += g.sum(1) @ U[module.bias]

    @staticmethod
    def pairwise_dots(module, A, G, n, scale, out):
        """out[i] += scale * sum_v <g_i^W, g_v^W> over the validation rows n: (the weight only)."""
        a = as3(A)
        g = as3(G)
        T = a.shape[1]
        at = a[:n].reshape(-1, a.shape[-1])
        av = a[n:].reshape(-1, a.shape[-1])
        gt = g[:n].reshape(-1, g.shape[-1])
        gv = g[n:].reshape(-1, g.shape[-1])
        out += scale * ((at @ av.t()) * (gt @ gv.t())).sum(1).view(n, T).sum(1)

    @staticmethod
    def costs(module, A, G, n, m, rule):
        """Multiply-adds (pairwise, vector) of the two routes, by `rule`."""
        T = as3(A).shape[1]
        d_out, d_in = module.weight.shape
        if rule == "ghostsuite":  # the released code: pairwise when 2 T^2 <= weight.numel()
            return 2 * T * T, module.weight.numel() + 1
        pairwise = n * m * T * T * (d_in + d_out)
        # 'cost' also counts the validation gradient the vector route needs; 'inrun' is inrun's
        # Linear.ghostCost alone, which does not.
        vector = (n if rule == "inrun" else n + m) * T * d_in * d_out
        return pairwise, vector


class LayerNormRule:
    """nn.LayerNorm: cheap per-example gradients from the normalised input."""

    @staticmethod
    def prepare(module, A):
        # Its per-example gradients need only the normalised input: computed once here.
        return F.layer_norm(A, module.normalized_shape, None, None, module.eps)

    @staticmethod
    def add_grads(module, A, G, rows, scale, grads, with_weight):
        g = as3(G)[rows]
        xh = as3(A)[rows]
        add_grad(grads, module.weight, scale * (g * xh).sum((0, 1)))
        add_grad(grads, module.bias, scale * g.sum((0, 1)))

    @staticmethod
    def vector_dots(module, A, G, n, U, out):
        g = as3(G)[:n]
        xh = as3(A)[:n]
        out += (g * xh).sum(1) @ U[module.weight]
        out += g.sum(1) @ U[module.bias]

    pairwise_dots = None


class EmbeddingRule:
    """nn.Embedding: A holds the token ids."""

    @staticmethod
    def prepare(module, A):
        return A

    @staticmethod
    def add_grads(module, A, G, rows, scale, grads, with_weight):
        g = G[rows]
        w = torch.zeros_like(module.weight)
        w.index_add_(0, A[rows].reshape(-1), g.reshape(-1, g.shape[-1]))
        add_grad(grads, module.weight, scale * w)

    @staticmethod
    def vector_dots(module, A, G, n, U, out):
        out += (G[:n] * U[module.weight][A[:n]]).sum((1, 2))

    pairwise_dots = None


class Conv2dRule:
    """nn.Conv2d (groups 1) on [n, C, H, W]: A is the input image, G the output gradient
    [n, out, OH, OW]. Seen through unfolded patches it is a Linear over P = OH*OW positions,
    A_i [P, K] (K = in*kh*kw) and G_i [P, out]:
      vector:   <G_i^T A_i, U> = sum_t <G_{i,t}, U A_{i,t}>, i.e. <G_i, conv2d(x_i, U)>: one
                convolution of the training images with U as the weight, no unfolding;
      pairwise: sum_v <G_i^T A_i, G_v^T A_v> either through position Gram matrices,
                sum_{t,s} (A_i A_v^T)_{ts} (G_i G_v^T)_{ts}, or by forming each example's gradient
                G_i^T A_i and taking inner products: inrun's Conv2d.pairwisePlan picks the cheaper.
    Book-keeping gradients use PyTorch's own convolution weight-gradient kernel on the rows' A
    and G (faster than unfold + matmul here)."""

    # inrun's Conv2d.formedChunkElements: gradient values per side held at once.
    FORMED_CHUNK = 1 << 22
    # Position-Gram elements held at once.
    GRAM_CHUNK = 1 << 24

    @staticmethod
    def prepare(module, A):
        if module.groups != 1 or module.padding_mode != "zeros":
            raise ValueError("Conv2dRule: groups 1 and zero padding only (as inrun's Conv2d)")
        return A

    @staticmethod
    def weight_grad(module, a, g):
        return torch.ops.aten.convolution_backward(
            g, a, module.weight, None, module.stride, module.padding, module.dilation,
            False, [0, 0], module.groups, [False, True, False],
        )[1]

    @staticmethod
    def add_grads(module, A, G, rows, scale, grads, with_weight):
        g = G[rows]
        if with_weight:
            add_grad(grads, module.weight, scale * Conv2dRule.weight_grad(module, A[rows], g))
        if module.bias is not None:
            add_grad(grads, module.bias, scale * g.sum((0, 2, 3)))

    @staticmethod
    def vector_dots(module, A, G, n, U, out):
        g = G[:n]
        Uw = U.get(module.weight)
        if Uw is not None:
            y = F.conv2d(A[:n], Uw, None, module.stride, module.padding, module.dilation)
            out += (y * g).sum((1, 2, 3))
        if module.bias is not None:
            out += g.sum((2, 3)) @ U[module.bias]

    @staticmethod
    def patches(module, x):
        """im2col: [k, C, H, W] -> [k, P, K], K in the weight's (c, kh, kw) order."""
        return F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride).transpose(1, 2)

    @staticmethod
    def example_grads(module, A, G):
        """Weight gradients G_i^T A_i of a few examples, [k, out*K]."""
        return torch.bmm(G.flatten(2), Conv2dRule.patches(module, A)).flatten(1)

    @staticmethod
    def plan(module, A, G, n, m):
        """inrun's Conv2d.pairwisePlan: (grams, formed) multiply-adds, and the chunk sizes."""
        out_c = module.out_channels
        K = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        P = G.shape[2] * G.shape[3]
        D = out_c * K + (out_c if module.bias is not None else 0)
        train_chunk = max(1, min(n, Conv2dRule.FORMED_CHUNK // D))
        val_chunk = max(1, min(m, Conv2dRule.FORMED_CHUNK // D))
        passes = -(-m // val_chunk)
        grams = n * m * P * P * (K + out_c)
        formed = (n * passes + m) * P * K * out_c + n * m * D
        return grams, formed, train_chunk, val_chunk

    @staticmethod
    def pairwise_dots(module, A, G, n, scale, out):
        """out[i] += scale * sum_v <g_i^W, g_v^W> over the validation rows n: (the weight only)."""
        m = A.shape[0] - n
        grams, formed, train_chunk, val_chunk = Conv2dRule.plan(module, A, G, n, m)
        if grams <= formed:
            av = Conv2dRule.patches(module, A[n:]).reshape(-1, Conv2dRule.patch_size(module))
            gv = G[n:].flatten(2).transpose(1, 2).reshape(-1, module.out_channels)
            P = G.shape[2] * G.shape[3]
            step = max(1, Conv2dRule.GRAM_CHUNK // (P * av.shape[0]))
            for t0 in range(0, n, step):
                k = min(step, n - t0)
                at = Conv2dRule.patches(module, A[t0 : t0 + k]).reshape(-1, av.shape[1])
                gt = G[t0 : t0 + k].flatten(2).transpose(1, 2).reshape(-1, module.out_channels)
                out[t0 : t0 + k] += scale * ((at @ av.t()) * (gt @ gv.t())).sum(1).view(k, P).sum(1)
            return
        for v0 in range(0, m, val_chunk):
            v1 = min(m, v0 + val_chunk)
            gv = Conv2dRule.example_grads(module, A[n + v0 : n + v1], G[n + v0 : n + v1])
            for t0 in range(0, n, train_chunk):
                t1 = min(n, t0 + train_chunk)
                gt = Conv2dRule.example_grads(module, A[t0:t1], G[t0:t1])
                out[t0:t1] += scale * (gt @ gv.t()).sum(1)

    @staticmethod
    def patch_size(module):
        return module.in_channels * module.kernel_size[0] * module.kernel_size[1]

    @staticmethod
    def costs(module, A, G, n, m, rule):
        """Multiply-adds (pairwise, vector) of the two routes, by `rule` (see LinearRule.costs)."""
        P = G.shape[2] * G.shape[3]
        K = Conv2dRule.patch_size(module)
        if rule == "ghostsuite":
            return 2 * P * P, module.weight.numel() + 1
        grams, formed, _, _ = Conv2dRule.plan(module, A, G, n, m)
        vector = (n if rule == "inrun" else n + m) * P * K * module.out_channels
        return min(grams, formed), vector


RULES = {nn.Linear: LinearRule, nn.LayerNorm: LayerNormRule, nn.Embedding: EmbeddingRule, nn.Conv2d: Conv2dRule}


def rule_of(module):
    return RULES[type(module)]


class Capture:
    """Forward hooks keeping every parameterised module's input and output during one forward."""

    def __init__(self, model):
        self.records = []
        self.handles = []
        for module in model.modules():
            if type(module) in RULES:
                self.handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module, inputs, output):
        self.records.append([module, inputs[0].detach(), output, None])

    def close(self):
        for h in self.handles:
            h.remove()


def bookkeeping_grads(records, rows, scale, skip=()):
    """Sum over `rows` (a slice) of the per-example gradients, times scale, from the captured A
    and G; the weights of the modules whose id is in `skip` are left out."""
    grads = {}
    for module, A, _, G in records:
        rule_of(module).add_grads(module, A, G, rows, scale, grads, id(module) not in skip)
    return grads


def ghost_pass(model, records_out, x, y):
    """One forward of the summed per-example losses with hooks, and the backward to every hooked
    output (no weight gradients). Appends [module, A, None, G] per hooked call to records_out (A as
    the module's rule prepares it) and returns the per-example losses."""
    cap = Capture(model)
    try:
        losses = model.example_losses(x, y)
    finally:
        cap.close()
    outs = [r[2] for r in cap.records]
    gs = torch.autograd.grad(losses.sum(), outs)
    for r, g in zip(cap.records, gs):
        r[2] = None
        r[3] = g.detach()
        r[1] = rule_of(r[0]).prepare(r[0], r[1])
    records_out.extend(cap.records)
    return losses.detach()


def vector_dots(records, n, U, out):
    """out[i] += <g_i, U> for the first n rows (the training examples) of every record; weights
    missing from U (on the pairwise route) are left out."""
    for module, A, _, G in records:
        rule_of(module).vector_dots(module, A, G, n, U, out)


def choose_pairwise(module, A, G, n, m, rule):
    """Whether `module` takes the pairwise route: 'pairwise' and 'vector' force one where the layer
    has both; 'cost', 'inrun' and 'ghostsuite' compare the rule's costs (LinearRule.costs)."""
    r = rule_of(module)
    if r.pairwise_dots is None or rule == "vector":
        return False
    if rule == "pairwise":
        return True
    pairwise, vector = r.costs(module, A, G, n, m, rule)
    return pairwise < vector


# ---------------------------------------------------------------------------------------------
# One workload: a model, its data, and the configurations the bench times.


class Workload:
    def __init__(self, spec, tensors):
        self.spec = spec
        self.kind = spec["kind"]
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[spec.get("dtype", "float32")]
        self.state = {k[len("w.") :]: v.to(self.dtype) for k, v in tensors.items() if k.startswith("w.")}
        if self.kind in ("mlp", "cnn"):
            # cnn: inrun's images are rows of C*H*W values, channels first (NCHW order).
            shape = (-1, *spec["image"]) if self.kind == "cnn" else (tensors["train.x"].shape[0], -1)
            self.train_x = tensors["train.x"].to(self.dtype).reshape(shape)
            self.train_y = tensors["train.y"].long()
            self.val_x = tensors["val.x"].to(self.dtype).reshape((-1, *self.train_x.shape[1:]))
            self.val_y = tensors["val.y"].long()
        else:
            self.train_x = tensors["train.x"].long()
            self.train_y = tensors["train.y"].long()
            self.val_x = tensors["val.x"].long()
            self.val_y = tensors["val.y"].long()
        self.batch = spec["batch"]
        self.batches = self.train_x.shape[0] // self.batch
        self.cursor = {}

    def new_model(self):
        s = self.spec
        if self.kind == "mlp":
            model = Mlp(s["sizes"])
            model.load_state_dict({"layers." + k[len("layers.") :]: v for k, v in self.state.items()})
        elif self.kind == "cnn":
            model = LeNet(s["image"], s["classes"], s["width"], s["kernel"], s["hidden"])
            model.load_state_dict(self.state)
        else:
            model = Gpt(s["vocab"], s["context"], s["layers"], s["heads"], s["width"])
            state = dict(self.state)
            state["lm_head.weight"] = state["wte.weight"]
            model.load_state_dict(state)
        model.to(self.dtype)
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def new_optimizer(self, model):
        if self.kind in ("mlp", "cnn"):
            return torch.optim.SGD(model.parameters(), lr=self.spec["lr"])
        o = self.spec["adamw"]
        return torch.optim.AdamW(
            model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weightDecay"]
        )

    def validation(self, m):
        return self.val_x[:m], self.val_y[:m]

    def next_batch(self, config):
        k = self.cursor.get(config, 0)
        self.cursor[config] = (k + 1) % self.batches
        sl = slice(k * self.batch, (k + 1) * self.batch)
        return self.train_x[sl], self.train_y[sl]

    # -- the pieces of a step ------------------------------------------------------------------

    def clip_factor(self, grads):
        if self.kind != "gpt" or self.spec["adamw"].get("clipNorm") is None:
            return 1.0
        total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
        return min(1.0, self.spec["adamw"]["clipNorm"] / (total + 1e-6))

    def plan(self, model, opt, optimizer, lr, n, mean_grad, kappa):
        """(kScale, kDiag per param or None, c per param or None) of this step, as inrun's plans."""
        params = list(model.parameters())
        if optimizer == "sgd":
            return lr, 1.0 / n, None, None
        o = self.spec["adamw"]
        b1, b2 = o["betas"]
        eps = o["eps"]
        kdiag, c = {}, {}
        for p in params:
            st = opt.state.get(p, {})
            t = (float(st["step"]) if "step" in st else 0.0) + 1
            g = mean_grad[p]
            v_prev = st.get("exp_avg_sq")
            m_prev = st.get("exp_avg")
            vt = (1 - b2) * g * g if v_prev is None else b2 * v_prev + (1 - b2) * g * g
            bc1 = 1 - b1**t
            P = 1.0 / (vt.sqrt() / math.sqrt(1 - b2**t) + eps)
            kdiag[p] = P * ((1 - b1) / bc1)
            cp = o["weightDecay"] * p.detach()
            if m_prev is not None:
                cp = cp + P * (b1 / bc1) * m_prev
            c[p] = cp
        return lr, kappa / n, kdiag, c

    def apply(self, model, opt, grads, scale):
        for p in model.parameters():
            p.grad = grads[p] * scale
        opt.step()

    def hvp(self, model, xv, yv, vec):
        """H_V vec by double backward on the validation batch; also returns g_V."""
        params = list(model.parameters())
        loss = model.example_losses(xv, yv).mean()
        gv = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * vec[p]).sum() for g, p in zip(gv, params))
        hv = torch.autograd.grad(dot, params)
        return {p: g.detach() for p, g in zip(params, gv)}, dict(zip(params, hv))

    def value_step(self, model, opt, x, y, m, order, optimizer, lr, rule=None, update=True):
        """One training step with per-example values; returns (values, {id(module): route}) for
        the modules with two routes (Linear, Conv2d). rule: see choose_pairwise; default the
        spec's "routeRule", else 'cost'."""
        rule = rule or self.spec.get("routeRule", "cost")
        n = x.shape[0]
        xv, yv = self.validation(m)
        records = []
        routes = {}
        if order == 1:
            # One forward/backward over [train; val] (the paper's method).
            xx = torch.cat([x, xv], 0)
            yy = torch.cat([y, yv], 0)
            ghost_pass(model, records, xx, yy)
            train = bookkeeping_grads(records, slice(0, n), 1.0)  # g_B (sum)
        else:
            ghost_pass(model, records, x, y)
            train = bookkeeping_grads(records, slice(0, n), 1.0)
        kappa = self.clip_factor({p: g / n for p, g in train.items()})
        mean_grad = {p: g * (kappa / n) for p, g in train.items()}
        eta, kscale, kdiag, c = self.plan(model, opt, optimizer, lr, n, mean_grad, kappa)
        values = torch.zeros(n, dtype=self.dtype)
        if order == 1:
            scalar = kdiag is None
            pair = set()
            if scalar:
                for r in records:
                    if choose_pairwise(r[0], r[1], r[3], n, m, rule) and not self.tied(model, r[0]):
                        pair.add(id(r[0]))
            # g_V for everything not on the pairwise route.
            gV = self.validation_grads(records, n, m, skip=pair)
            U = {}
            for p, g in gV.items():
                U[p] = eta * kscale * (g if kdiag is None else kdiag[p] * g)
            for r in records:
                module = r[0]
                if id(module) in pair:
                    rule_of(module).pairwise_dots(module, r[1], r[3], n, eta * kscale / m, values)
                    routes[id(module)] = "pairwise"
                elif rule_of(module).pairwise_dots is not None:
                    routes[id(module)] = "vector"
            vector_dots(records, n, U, values)
        else:
            # Second order: x = c + K g_B / 2; u = K (eta g_V - eta^2 H_V x).
            K = lambda p, v: kscale * (v if kdiag is None else kdiag[p] * v)  # noqa: E731
            vec = {}
            for p in model.parameters():
                hk = 0.5 * K(p, train[p])
                vec[p] = hk if c is None else c[p] + hk
            gV, hv = self.hvp(model, xv, yv, vec)
            U = {p: K(p, eta * gV[p] - eta * eta * hv[p]) for p in model.parameters()}
            vector_dots(records, n, U, values)
            for r in records:
                if rule_of(r[0]).pairwise_dots is not None:
                    routes[id(r[0])] = "vector"
        if update:
            self.apply(model, opt, train, kappa / n)
        return values, routes

    @staticmethod
    def tied(model, module):
        return isinstance(model, Gpt) and module is model.lm_head

    def validation_grads(self, records, n, m, skip):
        """Mean validation gradient from the validation rows (n:) of A and G, book-keeping style,
        without the weights on the pairwise route (`skip`), which need none."""
        return bookkeeping_grads(records, slice(n, None), 1.0 / m, skip)

    # -- configurations ------------------------------------------------------------------------

    def step_fn(self, config):
        """A zero-argument function running one step of `config` on its own model and optimizer."""
        model = self.new_model()
        opt = self.new_optimizer(model)
        s = self.spec
        if self.kind in ("mlp", "cnn"):
            lr = s["lr"]
            optimizer = "sgd"
        else:
            lr = s["adamw"]["lr"]
            optimizer = "adamw"
        m_full = s["validation"]

        def plain():
            x, y = self.next_batch(config)
            opt.zero_grad(set_to_none=True)
            loss = model.example_losses(x, y).mean()
            loss.backward()
            if self.kind == "gpt" and s["adamw"].get("clipNorm") is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), s["adamw"]["clipNorm"])
            opt.step()

        def floor():
            plain()
            xv, yv = self.validation(m_full)
            loss = model.example_losses(xv, yv).mean()
            torch.autograd.grad(loss, list(model.parameters()))

        def values(order, m, opt_kind, rule=None):
            def step():
                x, y = self.next_batch(config)
                self.value_step(model, opt, x, y, m, order, opt_kind, lr, rule)

            return step

        table = {
            "plain": plain,
            "floor": floor,
            "first": values(1, m_full, optimizer),
            "first-small": values(1, s.get("smallValidation", m_full), optimizer),
            "second": values(2, m_full, optimizer),
            # The paper's values for an Adam-trained model: the SGD formula (SGD as a proxy), the
            # released code's route rule; the update is still AdamW's.
            "first-paper": values(1, m_full, "sgd", "ghostsuite"),
        }
        if config not in table:
            raise ValueError(f"unknown config {config!r} (known: {', '.join(table)})")
        return table[config]

    def check_values(self, order, optimizer, lr, m, adamw=None, rule=None):
        """Values of the first training batch at the initial weights, by the timed steps' code;
        `adamw` overrides AdamW options (the check uses its own eps), `rule` the route rule (a
        check can force every layer onto one route)."""
        saved = self.spec.get("adamw")
        if adamw:
            self.spec["adamw"] = {**saved, **adamw}
        try:
            model = self.new_model()
            opt = self.new_optimizer(model)
            x, y = self.train_x[: self.batch], self.train_y[: self.batch]
            values, routes = self.value_step(model, opt, x, y, m, order, optimizer, lr, rule, update=False)
            names = {id(mod): name for name, mod in model.named_modules()}
            return values, {names[k]: route for k, route in routes.items()}
        finally:
            if adamw:
                self.spec["adamw"] = saved


def main():
    threads = None
    args = sys.argv[1:]
    if "--threads" in args:
        threads = int(args[args.index("--threads") + 1])
        torch.set_num_threads(threads)
    workloads = {}
    steps = {}
    out = sys.stdout

    def reply(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    reply({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                reply({"ok": True})
                return
            if cmd == "setup":
                workloads[msg["id"]] = Workload(msg["spec"], read_safetensors(msg["file"]))
                reply({"ok": True})
            elif cmd == "values":
                w = workloads[msg["id"]]
                values, routes = w.check_values(
                    msg["order"], msg["optimizer"], msg["lr"], msg["validation"], msg.get("adamw"), msg.get("rule")
                )
                reply({"values": values.tolist(), "routes": routes})
            elif cmd == "time":
                key = (msg["id"], msg["config"])
                if key not in steps:
                    steps[key] = workloads[msg["id"]].step_fn(msg["config"])
                fn = steps[key]
                ms = []
                for _ in range(int(msg["steps"])):
                    t0 = time.perf_counter()
                    fn()
                    ms.append((time.perf_counter() - t0) * 1000)
                reply({"ms": ms})
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as e:  # keep serving; the bench reports the error
            import traceback

            reply({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})


if __name__ == "__main__":
    main()
