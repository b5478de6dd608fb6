"""PyTorch reference of the doubling VNCA (Palm et al., ICLR 2022) used to check `vnca`.

The module tree mirrors the public reference implementation, so `state_dict()` keys are:

    encoder.{0,2,4,6,8}.{weight,bias}            Conv2d 5x5, stride 1 then 2, padding 2
    encoder.11.{weight,bias}                     Linear(c_last * 2 * 2 -> 2 * z_size)
    nca.update_net.0.{weight,bias}               Conv2d 3x3 z -> z, padding 1
    nca.update_net.{1..n}.delegate.{0,2}.{weight,bias}   residual 1x1 z -> hidden -> z
    nca.update_net.{n+1}.{weight,bias}           Conv2d 1x1 z -> z, zero-initialised

Tensors here are NCHW (PyTorch); `vnca` is NHWC. Needs only torch (+ numpy for I/O).
"""
import json
import math
import os
import struct

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DEFAULT_CONFIG = dict(
    z_size=256,
    hidden=256,
    n_blocks=4,
    encoder_channels=[32, 64, 128, 256, 512],
    steps_per_doubling=8,
    n_doublings=4,
    p_update=1.0,
    image_size=32,
)


# Channels-last (NHWC in memory) convolutions are several times faster on CPU (oneDNN);
# the values and the NCHW view of the tensors are unchanged.
CL = torch.channels_last


class Residual(nn.Module):
    """x + delegate(x)."""

    def __init__(self, *layers):
        super().__init__()
        self.delegate = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.delegate(x)


class NCA(nn.Module):
    """The update rule and the rollout loop: state <- state + mask * update_net(state)."""

    def __init__(self, z_size, hidden, n_blocks, p_update):
        super().__init__()
        layers = [nn.Conv2d(z_size, z_size, 3, padding=1)]
        for _ in range(n_blocks):
            layers.append(Residual(nn.Conv2d(z_size, hidden, 1), nn.ELU(), nn.Conv2d(hidden, z_size, 1)))
        last = nn.Conv2d(z_size, z_size, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.update_net = nn.Sequential(*layers)
        self.p_update = p_update

    def step(self, state):
        update = self.update_net(state)
        if self.p_update < 1.0:
            b, _, h, w = state.shape
            mask = (torch.rand(b, 1, h, w, device=state.device) < self.p_update).to(state.dtype)
            update = update * mask
        return state + update

    def forward(self, state, steps):
        for _ in range(steps):
            state = self.step(state)
        return state


class VNCA(nn.Module):
    """Doubling VNCA for binary images [b, 1, S, S] with S = 2 * 2**n_doublings."""

    def __init__(self, **config):
        super().__init__()
        cfg = dict(DEFAULT_CONFIG)
        cfg.update(config)
        self.config = cfg
        z = cfg['z_size']
        chans = cfg['encoder_channels']
        layers = []
        c_in = 1
        for i, c in enumerate(chans):
            layers += [nn.Conv2d(c_in, c, 5, stride=1 if i == 0 else 2, padding=2), nn.ELU()]
            c_in = c
        side = cfg['image_size']
        for _ in chans[1:]:
            side = (side + 2 * 2 - 5) // 2 + 1
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, 2 * z)]
        self.encoder = nn.Sequential(*layers)
        self.nca = NCA(z, cfg['hidden'], cfg['n_blocks'], cfg['p_update'])
        self.z_size = z
        self.to(memory_format=CL)

    # --- encoder / posterior -------------------------------------------------------
    def encode(self, x):
        """x [b, 1, S, S] -> (mu [b, z], logsigma [b, z])."""
        out = self.encoder(x.contiguous(memory_format=CL))
        return out[:, :self.z_size], out[:, self.z_size:]

    # --- decoder ---------------------------------------------------------------------
    def seed(self, z):
        """z [b, z] -> state [b, z, 2, 2] (z copied into every cell)."""
        return z[:, :, None, None].expand(-1, -1, 2, 2).contiguous(memory_format=CL)

    def decode(self, z, return_states=False):
        """z [b, z] -> final state [b, z, S, S]. Logits are state[:, :1]."""
        steps = self.config['steps_per_doubling']
        state = self.nca(self.seed(z), steps)
        states = [state]
        for _ in range(self.config['n_doublings']):
            state = state.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).contiguous(memory_format=CL)
            state = self.nca(state, steps)
            states.append(state)
        return (state, states) if return_states else state

    # --- objectives ----------------------------------------------------------------
    @staticmethod
    def log_likelihood(x, logits):
        """Bernoulli log p(x | logits) summed over pixels: [b]."""
        return -F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)

    def loss(self, x):
        """Negative ELBO (batch mean) with one posterior sample; also returns recon and KL means."""
        mu, logsigma = self.encode(x)
        z = mu + torch.exp(logsigma) * torch.randn_like(mu)
        logits = self.decode(z)[:, :1]
        recon = self.log_likelihood(x, logits)
        kl = 0.5 * (mu ** 2 + torch.exp(2 * logsigma) - 2 * logsigma - 1).sum(1)
        nelbo = (kl - recon).mean()
        return nelbo, -recon.mean(), kl.mean()

    @torch.no_grad()
    def iwae(self, x, k=128, chunk=128):
        """Importance-weighted bound log p(x) >= log mean_k p(x, z_k) / q(z_k | x): [b] in nats."""
        mu, logsigma = self.encode(x)
        out = []
        for i in range(x.shape[0]):
            logw = []
            done = 0
            while done < k:
                n = min(chunk, k - done)
                eps = torch.randn(n, self.z_size, device=x.device)
                z = mu[i] + torch.exp(logsigma[i]) * eps
                logits = self.decode(z)[:, :1]
                ll = self.log_likelihood(x[i:i + 1].expand(n, -1, -1, -1), logits)
                log_pz = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(1)
                log_qz = (-0.5 * eps ** 2 - logsigma[i] - 0.5 * math.log(2 * math.pi)).sum(1)
                logw.append(ll + log_pz - log_qz)
                done += n
            logw = torch.cat(logw)
            out.append(torch.logsumexp(logw, 0) - math.log(k))
        return torch.stack(out)


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# --- safetensors, written and read by hand (no safetensors package here) ----------------
def save_safetensors(path, tensors, metadata=None):
    """Writes float32 tensors as a .safetensors file: u64 LE header length, JSON header, bytes."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = tensors[name].detach().cpu().to(torch.float32).contiguous().numpy().astype('<f4')
        data = arr.tobytes()
        header[name] = dict(dtype='F32', shape=list(arr.shape), data_offsets=[offset, offset + len(data)])
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(',', ':')).encode('utf-8')
    head += b' ' * ((8 - len(head) % 8) % 8)  # align the data to 8 bytes
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """Reads a float32 .safetensors file: returns ({name: tensor}, metadata dict)."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info['dtype'] == 'F32', f'{name}: only F32 supported, got {info["dtype"]}'
        a, b = info['data_offsets']
        arr = np.frombuffer(raw[base + a:base + b], dtype='<f4').reshape(info['shape'])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def config_metadata(config, **extra):
    meta = {k: json.dumps(v) for k, v in config.items()}
    meta['format'] = 'vnca-torch'
    meta['layout'] = 'pytorch: conv weight [out, in, kh, kw], linear weight [out, in], flatten order (C, H, W)'
    for k, v in extra.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    return meta


def config_from_metadata(meta):
    cfg = {}
    for k in DEFAULT_CONFIG:
        if k in meta:
            cfg[k] = json.loads(meta[k])
    return cfg
