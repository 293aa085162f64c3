#!/usr/bin/python3
"""The HDQT training step in PyTorch, emulated the way the paper's authors do it.

The peer `hdqsim bench train` is compared against (scripts/bench_train_vs_pytorch.sh).
Fake-quantized fp32 tensors, as in the authors' public code (Schiemer et al.,
arXiv 2310.03675):

- per-tensor 4-bit quantization: mx = max|x| * clip, scale = mx / qmax,
  qmax = 7 signed (symmetric) or 15 when the tensor has no negative value;
  values are clamped to [-mx, mx] (or [0, mx]), divided by the scale and rounded;
  the integer-valued fp32 tensor and its scale are kept (dequantization
  multiplies the matmul result by the scales);
- forward (X and W): clip 0.975, round to nearest (torch.round);
- forward matmul: the contraction (input features) cut into tiles of 32; each
  tile's partial sums clamped to +-127 (8-bit symmetric accumulator), then summed;
- backward: Hadamard transforms as dense matmuls with block-diagonal Sylvester
  matrices (block = largest power-of-two factor of the dimension, like the
  authors' make_hadamard) on the contraction dimension of both backward matmuls:
    dX = clamp(Q_sr(G H_O) Q_rn(H_O Wq), +-127) * s2 s3 sw / b_O
    dW = clamp(Q_sr(G^T H_B) Q_sr(H_B Xq), +-127) * s5 s4 sx / b_B
  (Q_rn: nearest, clip 1; Q_sr: stochastic rounding with torch.rand, clip 1;
  the backward products are clamped once, no tiling);
- db = column sums of G; straight-through estimator identity (paper preset);
- MLP 784-256-256-10 with ReLU, softmax cross-entropy, torch.optim.SGD with
  momentum 0.9 (lr 0.05).

--network cnn-small is hdqsim's cnn-small preset on 1 x 28 x 28 images
(conv3x3-16 pad 1, ReLU, maxpool 2, conv3x3-32 pad 1, ReLU, maxpool 2, flatten,
linear 1568-10) with the convolution of the `paper` preset (docs/contract.md §9,
per_sample mapping), as the authors' Conv2d_Ours does it: the input quantized
per tensor in NCHW, unfolded (F.unfold, im2col), the forward as the linear
layer's tiled clamped matmul over K = C_in*3*3; the backward is the linear
layer's per sample, with the sample's P positions as the batch:
    dX_n = fold(clamp(Q_sr(G_n H_O)[n] Q_rn(H_O Wq), +-127) * s2[n] s3 sw / b_O)
    dW   = sum_n clamp(Q_sr(G_n H_P)[n] Q_sr(H_P Xcol_n)[n], +-127) * s5[n] s4[n] sx / b_P
(Q_sr(..)[n]: one scale and signedness per sample; F.fold is col2im; G_n is
sample n's C_out x P gradient; the first conv computes no dX). The block-
diagonal Hadamard matrices are applied block by block (a reshape to blocks of
b, then a b x b matmul: the same products without the zero blocks; P = 784 has
49 blocks of 16), the strong peer; --dense-hadamard multiplies by the whole
P x P matrix, as the authors' make_hadamard matrix is used.

One timed step = zero_grad + forward + loss + backward + optimizer step, the
same work as hdqsim's FunctionalEngine::gradients + Sgd::step. Prints one line
per (threads, batch) and, as its last line, one JSON object.

Run with Debian's python3-torch:  /usr/bin/python3 bench/pytorch_peer.py
Debian's torch calls the generic libblas.so.3 for its fp32 matmuls: netlib's
reference BLAS unless another is installed. scripts/bench_train_vs_pytorch.sh
runs this peer on Debian's OpenBLAS (LD_LIBRARY_PATH, nothing installed); the
JSON names the BLAS in use. OpenBLAS's thread count follows --threads too.
"""
import argparse
import ctypes
import gzip
import json
import os
import statistics
import sys
import time

# Before torch loads libgomp: idle OpenMP workers sleep instead of spinning. On a
# machine with as many busy processes as cores, spinning workers (the default)
# make 2-thread steps up to 50x slower; passive waiting is the peer's best setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F

BITS = 4
FWD_CLIP = 0.975
ACC_MAX = 2 ** (8 - 1) - 1  # 8-bit symmetric accumulator: +-127
TILE = 32


def sylvester(n):
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def largest_pow2_factor(d):
    return d & -d


_hadamard_cache = {}


def block_hadamard(d):
    """Block-diagonal Sylvester matrix of size d, block = largest power-of-two factor (cached)."""
    if d not in _hadamard_cache:
        b = largest_pow2_factor(d)
        _hadamard_cache[d] = (torch.block_diag(*([sylvester(b)] * (d // b))).contiguous(), b)
    return _hadamard_cache[d]


def round_to_int(v, stochastic):
    """Stochastic rounding of |v| with torch.rand (sign kept), or torch.round."""
    if not stochastic:
        return torch.round(v)
    a = v.abs()
    fl = torch.floor(a)
    return torch.sign(v) * (fl + (torch.rand_like(a) < (a - fl)).to(a.dtype))


def quantize(x, clip, stochastic):
    """Per-tensor 4-bit quantization: integer-valued fp32 tensor and its scale."""
    m = x.abs().max()
    mx = m * clip if clip != 1.0 else m
    unsigned = bool(x.min() >= 0)
    qmax = 2 ** BITS - 1 if unsigned else 2 ** (BITS - 1) - 1
    qmin = 0 if unsigned else -qmax
    scale = mx / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    v = torch.clamp(x, 0.0 if unsigned else -mx, mx) / safe
    return round_to_int(v, stochastic).clamp_(qmin, qmax), scale


def quantize_per_sample(x, clip, stochastic):
    """quantize() on each x[n] alone (own max, signedness, scale): integer-valued x and N scales shaped to broadcast."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    m = flat.abs().amax(1)
    mx = m * clip if clip != 1.0 else m
    unsigned = flat.amin(1) >= 0
    qmax = torch.where(unsigned, torch.tensor(2.0 ** BITS - 1), torch.tensor(2.0 ** (BITS - 1) - 1))
    scale = mx / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    shape = (n,) + (1,) * (x.dim() - 1)
    lo = torch.where(unsigned, torch.zeros_like(mx), -mx)
    v = torch.maximum(torch.minimum(x, mx.view(shape)), lo.view(shape)) / safe.view(shape)
    q = round_to_int(v, stochastic)
    qmin = torch.where(unsigned, torch.zeros_like(qmax), -qmax)
    return torch.maximum(torch.minimum(q, qmax.view(shape)), qmin.view(shape)), scale.view(shape)


DENSE_HADAMARD = False  # --dense-hadamard: the whole block-diagonal matrix, zero blocks included


def hadamard_last(x):
    """x @ H for the block-diagonal Sylvester H of x's last dimension (H is symmetric: also H x^T)."""
    d = x.shape[-1]
    if DENSE_HADAMARD:
        h, b = block_hadamard(d)
        return x @ h, b
    b = largest_pow2_factor(d)
    h, _ = block_hadamard(b)
    return (x.reshape(*x.shape[:-1], d // b, b) @ h).reshape(x.shape), b


def tiled_clamped_matmul(a, b_t):
    """a (M x K) @ b_t^T (b_t: N x K), K cut into tiles of TILE, each tile's sums clamped to +-ACC_MAX."""
    m, k = a.shape
    n = b_t.shape[0]
    if k <= TILE:  # one tile: no zero padding to multiply
        return (a @ b_t.t()).clamp_(-ACC_MAX, ACC_MAX)
    t = (k + TILE - 1) // TILE
    pad = t * TILE - k  # zero padding adds nothing to a tile sum
    at = F.pad(a, (0, pad)).view(m, t, TILE).transpose(0, 1)       # t x M x TILE
    bt = F.pad(b_t, (0, pad)).view(n, t, TILE).permute(1, 2, 0)    # t x TILE x N
    return torch.bmm(at, bt).clamp_(-ACC_MAX, ACC_MAX).sum(0)       # M x N


class HdqtLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, bias):
        xq, sx = quantize(x, FWD_CLIP, stochastic=False)
        wq, sw = quantize(w, FWD_CLIP, stochastic=False)
        acc = tiled_clamped_matmul(xq, wq)
        ctx.save_for_backward(xq, wq, sx, sw)
        return acc * sx * sw + bias

    @staticmethod
    def backward(ctx, g):
        xq, wq, sx, sw = ctx.saved_tensors
        batch, out = g.shape
        dx = None
        if ctx.needs_input_grad[0]:
            h_o, b_o = block_hadamard(out)
            whq, s3 = quantize(h_o @ wq, 1.0, stochastic=False)  # W' = H_O Wq (O x I)
            ghq, s2 = quantize(g @ h_o, 1.0, stochastic=True)    # G' = G H_O (B x O)
            dx = (ghq @ whq).clamp_(-ACC_MAX, ACC_MAX) * s2 * s3 * sw / b_o
        h_b, b_b = block_hadamard(batch)
        xhq, s4 = quantize(h_b @ xq, 1.0, stochastic=True)       # X' = H_B Xq (B x I)
        gthq, s5 = quantize(g.t() @ h_b, 1.0, stochastic=True)   # G'' = G^T H_B (O x B)
        dw = (gthq @ xhq).clamp_(-ACC_MAX, ACC_MAX) * s5 * s4 * sx / b_b
        return dx, dw, g.sum(0)


class HdqtConv2dFn(torch.autograd.Function):
    """The `paper` convolution (per_sample mapping) on NCHW x and OIHW w, stride and zero padding."""

    @staticmethod
    def forward(ctx, x, w, bias, stride, pad):
        n, _, h, wd = x.shape
        cout, _, kh, kw = w.shape
        hout, wout = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
        p = hout * wout
        xq, sx = quantize(x, FWD_CLIP, stochastic=False)                   # NCHW, before im2col
        wq, sw = quantize(w.reshape(cout, -1), FWD_CLIP, stochastic=False)  # C_out x K
        cols = F.unfold(xq, (kh, kw), padding=pad, stride=stride).transpose(1, 2).reshape(n * p, -1)  # (N*P) x K
        acc = tiled_clamped_matmul(cols, wq)                               # (N*P) x C_out
        ctx.save_for_backward(cols, wq, sx, sw)
        ctx.geometry = (h, wd, kh, kw, stride, pad, p)
        y = acc * sx * sw + bias
        return y.view(n, p, cout).transpose(1, 2).reshape(n, cout, hout, wout)

    @staticmethod
    def backward(ctx, g):
        cols, wq, sx, sw = ctx.saved_tensors
        h, wd, kh, kw, stride, pad, p = ctx.geometry
        n, cout = g.shape[:2]
        k = cols.shape[1]
        gm = g.reshape(n, cout, p)                                         # G_n: C_out x P
        dx = None
        if ctx.needs_input_grad[0]:
            wh, b_o = hadamard_last(wq.t())                                # (H_O Wq)^T: K x C_out
            whq, s3 = quantize(wh.t(), 1.0, stochastic=False)              # W' = H_O Wq (C_out x K)
            gh, _ = hadamard_last(gm.transpose(1, 2))                      # G'_n = G_n^T H_O: N x P x C_out
            ghq, s2 = quantize_per_sample(gh, 1.0, stochastic=True)
            d = (ghq @ whq).clamp_(-ACC_MAX, ACC_MAX) * s2 * s3 * sw / b_o  # N x P x K
            dx = F.fold(d.transpose(1, 2), (h, wd), (kh, kw), padding=pad, stride=stride)  # col2im
        xh, b_p = hadamard_last(cols.view(n, p, k).transpose(1, 2))        # (H_P Xcol_n)^T: N x K x P
        xhq, s4 = quantize_per_sample(xh, 1.0, stochastic=True)            # X'_n (transposed)
        gh2, _ = hadamard_last(gm)                                         # G''_n = G_n H_P: N x C_out x P
        ghq2, s5 = quantize_per_sample(gh2, 1.0, stochastic=True)
        dw = ((ghq2 @ xhq.transpose(1, 2)).clamp_(-ACC_MAX, ACC_MAX) * s5 * s4 * sx / b_p).sum(0)  # per-sample dW summed
        return dx, dw.view(cout, -1, kh, kw), g.sum((0, 2, 3)), None, None


class HdqtCnnSmall(torch.nn.Module):
    """hdqsim's cnn-small preset (models/nn/network.h) for 1 x 28 x 28 images."""

    def __init__(self, classes):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 7 * 7, classes)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(HdqtConv2dFn.apply(x, self.conv1.weight, self.conv1.bias, 1, 1)), 2)
        x = F.max_pool2d(torch.relu(HdqtConv2dFn.apply(x, self.conv2.weight, self.conv2.bias, 1, 1)), 2)
        return HdqtLinearFn.apply(x.flatten(1), self.fc.weight, self.fc.bias)


class HdqtMlp(torch.nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:]))

    def forward(self, x):
        for li, layer in enumerate(self.layers):
            x = HdqtLinearFn.apply(x, layer.weight, layer.bias)
            if li + 1 < len(self.layers):
                x = torch.relu(x)
        return x


def load_fmnist_train(folder="/usr/share/datasets/fashion-mnist"):
    """Fashion-MNIST training images as x / 255 (N x 784 fp32) and labels, or None."""
    try:
        with gzip.open(os.path.join(folder, "train-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
        with gzip.open(os.path.join(folder, "train-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    except OSError:
        return None
    x = torch.from_numpy(images.reshape(-1, 784).astype(np.float32) / np.float32(255.0))
    return x, torch.from_numpy(labels.astype(np.int64))


def _blas():
    """The BLAS library torch's matmuls call (libblas.so.3: Debian's alternative, or LD_LIBRARY_PATH)."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
    except OSError:
        return None, "unknown"
    if hasattr(lib, "openblas_get_config"):
        lib.openblas_get_config.restype = ctypes.c_char_p
        return lib, "OpenBLAS " + lib.openblas_get_config().decode()
    if hasattr(lib, "bli_info_get_version_str"):
        return lib, "BLIS"
    return lib, "reference BLAS (netlib)"


BLAS_LIB, BLAS_NAME = _blas()


def set_threads(threads):
    torch.set_num_threads(threads)
    if BLAS_LIB is not None and hasattr(BLAS_LIB, "openblas_set_num_threads"):
        BLAS_LIB.openblas_set_num_threads(threads)  # OpenBLAS keeps its own thread count


def time_steps(network, widths, batch, threads, steps, warmup, data, seed):
    set_threads(threads)
    torch.manual_seed(seed)
    model = HdqtCnnSmall(widths[-1]) if network == "cnn-small" else HdqtMlp(widths)
    sample_shape = (1, 28, 28) if network == "cnn-small" else (widths[0],)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xs, ys = data
    n = xs.shape[0]
    row = 0
    times = []
    loss = None
    for i in range(warmup + steps):
        idx = torch.arange(row, row + batch) % n
        row = (row + batch) % n
        x, y = xs[idx].reshape(batch, *sample_shape), ys[idx].contiguous()  # outside the timed region, like hdqsim
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt * 1e3)
    return statistics.median(times), statistics.mean(times), min(times), float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (torch.set_num_threads)")
    ap.add_argument("--batch", default="128,256", help="comma-separated batch sizes")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--network", choices=("mlp", "cnn-small"), default="mlp",
                    help="mlp (--widths) or hdqsim's cnn-small preset (784 inputs as 1 x 28 x 28, --widths' last = classes)")
    ap.add_argument("--widths", default="784,256,256,10")
    ap.add_argument("--dense-hadamard", action="store_true",
                    help="conv: multiply by the whole block-diagonal P x P Hadamard matrix (authors' make_hadamard)")
    ap.add_argument("--synthetic", action="store_true", help="uniform [0, 1) data instead of Fashion-MNIST")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    widths = [int(v) for v in a.widths.split(",")]
    global DENSE_HADAMARD
    DENSE_HADAMARD = a.dense_hadamard
    if a.network == "cnn-small" and widths[0] != 784:
        ap.error("--network cnn-small takes 1 x 28 x 28 images: --widths must start with 784")
    name = f"MLP {'-'.join(map(str, widths))}" if a.network == "mlp" else f"cnn-small, {widths[-1]} classes"
    data = None if a.synthetic else load_fmnist_train()
    data_name = "fashion-mnist"
    if data is None or data[0].shape[1] != widths[0]:
        g = torch.Generator().manual_seed(a.seed)
        data = (torch.rand(4096, widths[0], generator=g), torch.randint(widths[-1], (4096,), generator=g))
        data_name = "synthetic"
    results = []
    for threads in [int(v) for v in a.threads.split(",")]:
        for batch in [int(v) for v in a.batch.split(",")]:
            med, mean, mn, loss = time_steps(a.network, widths, batch, threads, a.steps, a.warmup, data, a.seed)
            print(f"pytorch HDQT step: {name}, batch {batch}, {threads} threads: "
                  f"median {med:.3f} ms/step (mean {mean:.3f}, min {mn:.3f}), last loss {loss:.4f} [{BLAS_NAME}]", flush=True)
            results.append({"threads": threads, "batch": batch, "pytorch_ms_per_step": med, "mean_ms_per_step": mean,
                            "min_ms_per_step": mn, "last_loss": loss})
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "python": sys.version.split()[0],
                      "blas": BLAS_NAME, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                      "network": a.network, "dense_hadamard": a.dense_hadamard, "widths": widths, "data": data_name, "steps": a.steps, "warmup": a.warmup, "results": results}))


if __name__ == "__main__":
    main()
