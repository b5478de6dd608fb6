"""Builds the PyTorch reference fixtures that tests compare `vnca` against.

Produced with (from the repository root):

    npx tsx tools/export-mnist.ts --out .tmp/mnist      # the two input digits come from here
    /usr/bin/python3 tools/make_fixtures.py --mnist .tmp/mnist --out tests/fixtures

(Debian python3-torch 1.13.1, CPU, float32.) Writes:

    tests/fixtures/vnca-tiny.safetensors     float32 weights, keys of tools/vnca_torch.py
                                             (PyTorch layouts: conv [out, in, kh, kw],
                                             linear [out, in], flatten order (C, H, W));
                                             __metadata__ holds the config as JSON strings
    tests/fixtures/vnca-tiny.expected.json   config; inputs x NHWC [2, 32, 32, 1];
                                             encoder output [2, 2 z] = [mu, logsigma];
                                             a fixed z [2, z] and the decoder states for it,
                                             NHWC: after the first 8 steps [2, 2, 2, z] and
                                             final [2, 32, 32, z]; the ELBO terms for a fixed
                                             noise eps (z = mu + exp(logsigma) * eps)

Numbers are rounded to 7 significant digits.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnca_torch as V  # noqa: E402

TINY_CONFIG = dict(
    z_size=8,
    hidden=8,
    n_blocks=4,
    encoder_channels=[4, 4, 4, 4, 4],
    steps_per_doubling=8,
    n_doublings=4,
    p_update=1.0,
    image_size=32,
)


def rounded(t):
    """Tensor -> nested lists of floats with 7 significant digits."""
    a = t.detach().cpu().double().numpy()
    return json.loads(json.dumps(np.vectorize(lambda v: float(f'{v:.7g}'))(a).tolist()))


def nhwc(t):
    return t.permute(0, 2, 3, 1)


def inputs(mnist_dir):
    """Two binary 32x32 images [2, 1, 32, 32]: test digits 0 and 1 of the export, else random."""
    path = os.path.join(mnist_dir, 'test-images.u8') if mnist_dir else None
    if path and os.path.exists(path):
        raw = np.fromfile(path, dtype=np.uint8)[:2 * 32 * 32].reshape(2, 1, 32, 32)
        return torch.from_numpy(raw.astype(np.float32)), f'{mnist_dir}/test-images.u8 images 0 and 1'
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 1, 32, 32, generator=g) < 0.3).float()
    x[:, :, :2] = 0
    x[:, :, -2:] = 0
    x[:, :, :, :2] = 0
    x[:, :, :, -2:] = 0
    return x, 'random binary (torch.Generator seed 1, p 0.3), zero border of 2'


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--mnist', default='.tmp/mnist')
    p.add_argument('--out', default='tests/fixtures')
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    model = V.VNCA(**TINY_CONFIG)
    # Overwrite every parameter (the zero-initialised last conv too) with small random
    # values, scaled by fan-in, so the decoder output is nontrivial but stays O(1).
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            fan_in = prm[0].numel() if prm.dim() > 1 else 1
            scale = 1.0 / np.sqrt(fan_in)
            if name.startswith('nca.'):
                scale *= 0.5
            if prm.dim() == 1:
                scale = 0.05
            if name.startswith('nca.update_net.5'):
                scale *= 0.2  # 40 residual updates in a row: keep each one small
            prm.copy_(torch.randn(prm.shape, generator=g) * scale)
    model.eval()

    x, source = inputs(args.mnist)
    z_size = TINY_CONFIG['z_size']
    with torch.no_grad():
        enc = model.encoder(x)
        mu, logsigma = enc[:, :z_size], enc[:, z_size:]
        z = torch.randn(2, z_size, generator=g)
        final, states = model.decode(z, return_states=True)
        eps = torch.randn(2, z_size, generator=g)
        zq = mu + torch.exp(logsigma) * eps
        logits = model.decode(zq)[:, :1]
        recon = -V.VNCA.log_likelihood(x, logits)
        kl = 0.5 * (mu ** 2 + torch.exp(2 * logsigma) - 2 * logsigma - 1).sum(1)

    print('encoder out  |max|', enc.abs().max().item())
    for s in states:
        print(f'state {s.shape[-1]:>2}x{s.shape[-1]:<2} |max| {s.abs().max().item():.3f}  std {s.std().item():.3f}')
    print('recon', recon.tolist(), 'kl', kl.tolist())

    os.makedirs(args.out, exist_ok=True)
    meta = V.config_metadata(TINY_CONFIG, purpose='test fixture: random weights, not trained')
    V.save_safetensors(os.path.join(args.out, 'vnca-tiny.safetensors'), model.state_dict(), meta)

    expected = dict(
        note='Made by tools/make_fixtures.py with PyTorch (NCHW) and converted to NHWC. '
             'encoderOutput = [mu, logsigma] (first z_size are mu). decoder: z copied into a 2x2 grid, '
             '8 steps, then 4 x (nearest x2 doubling, 8 steps); pUpdate 1. ELBO terms use '
             'z = mu + exp(logsigma) * eps, recon = -sum log Bernoulli(x | logits = channel 0), '
             'kl = KL(N(mu, exp(logsigma)^2) || N(0, I)) summed over z.',
        torch_version=torch.__version__,
        config=TINY_CONFIG,
        input_source=source,
        x=rounded(nhwc(x)),
        encoderOutput=rounded(enc),
        z=rounded(z),
        state2x2=rounded(nhwc(states[0])),
        finalState=rounded(nhwc(final)),
        eps=rounded(eps),
        recon=rounded(recon),
        kl=rounded(kl),
        negElboMean=float(f'{(recon + kl).mean().item():.7g}'),
    )
    with open(os.path.join(args.out, 'vnca-tiny.expected.json'), 'w') as f:
        json.dump(expected, f, separators=(',', ':'))
        f.write('\n')
    for name in ('vnca-tiny.safetensors', 'vnca-tiny.expected.json'):
        print(name, os.path.getsize(os.path.join(args.out, name)), 'bytes')


if __name__ == '__main__':
    main()
