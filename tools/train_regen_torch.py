"""Trains the damage-trained non-doubling VNCA (`models/mnist-regen`) in PyTorch, as the paper's
second model (DESIGN.md section 2), scaled down for two CPU cores:

    npx tsx tools/export-mnist.ts --out .tmp/mnist-28 --pad 0
    /usr/bin/python3 tools/train_regen_torch.py --data .tmp/mnist-28 --out .tmp/regen-torch --deadline-utc 02:40
    npx tsx tools/convert-regen.ts --from .tmp/regen-torch --to models/mnist-regen

The model is `vnca`'s `new VNCA({ ...NON_DOUBLING_MNIST, zSize, pUpdate, encoderChannels })`:
z copied into every cell of the 28x28 grid; the update rule conv3x3 (z -> z) ; ELU ; conv1x1
(z -> z, no bias, zero-initialised); state <- state + mask * rule(state), mask ~ Bernoulli(pUpdate)
per cell; a random number of steps in [32, 64] per rollout; channel 0 = Bernoulli logits.
Training: a pool of 1024 earlier final states with their images; once it is full, half of each
batch starts from pooled states, a quarter of the batch (from the pooled half) with a 14x14
square of cells zeroed; Adam, global-norm clip 1.

One departure from the reference, on purpose: the KL term is taken over the fresh half of the
batch only. The pooled half's states do not come from its images' posteriors, so their KL has
no reconstruction term to balance it and only pulls the encoder towards the prior (the
reference's code comments that pool seeding "is wrong and will mess up the gradient").
Loss = (sum over the batch of -log p(x|state) + sum over fresh entries of KL) / batch, plus an
overflow penalty on cell states beyond +-10 (--state-bound), which keeps pooled states bounded:
without it they grew to 1e4 after ~1,000 steps and training diverged.

Writes into --out: weights.safetensors (vnca names and layouts: HWIO kernels, the encoder's
dense layer in NHWC flatten order; metadata: config and step), state.pt (model, optimiser,
pool, step: --resume continues), curve.csv (step, seconds, loss, recon, kl, grad norm, mean
over each --log-every steps).
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnca_torch as V  # noqa: E402
from train_torch import load_split, log, parse_deadline as deadline_ts, read_vnca_weights  # noqa: E402

CL = torch.channels_last


class Rule(nn.Module):
    """conv3x3 (z -> z) ; ELU ; conv1x1 (z -> z, no bias, zero-init): vnca's ResidualUpdateRule with nBlocks 0."""

    def __init__(self, z):
        super().__init__()
        self.conv_in = nn.Conv2d(z, z, 3, padding=1)
        self.conv_out = nn.Conv2d(z, z, 1, bias=False)
        nn.init.zeros_(self.conv_out.weight)

    def forward(self, s):
        return self.conv_out(F.elu(self.conv_in(s)))


class RegenVNCA(nn.Module):
    def __init__(self, z_size, encoder_channels, p_update, image_size=28):
        super().__init__()
        layers = []
        c_in = 1
        for i, c in enumerate(encoder_channels):
            layers += [nn.Conv2d(c_in, c, 5, stride=1 if i == 0 else 2, padding=2), nn.ELU()]
            c_in = c
        side = image_size
        for _ in encoder_channels[1:]:
            side = (side + 2 * 2 - 5) // 2 + 1
        self.side = side
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, 2 * z_size)]
        self.encoder = nn.Sequential(*layers)
        self.rule = Rule(z_size)
        self.z = z_size
        self.p_update = p_update
        self.image_size = image_size
        self.to(memory_format=CL)

    def encode(self, x):
        out = self.encoder(x.contiguous(memory_format=CL))
        return out[:, :self.z], out[:, self.z:]

    def seed(self, z):
        n = self.image_size
        return z[:, :, None, None].expand(-1, -1, n, n).contiguous(memory_format=CL)

    def run(self, state, steps):
        for _ in range(steps):
            update = self.rule(state)
            if self.p_update < 1.0:
                b, _, h, w = state.shape
                update = update * (torch.rand(b, 1, h, w) < self.p_update).to(state.dtype)
            state = state + update
        return state

    @staticmethod
    def log_likelihood(x, state):
        return -F.binary_cross_entropy_with_logits(state[:, :1], x, reduction='none').flatten(1).sum(1)

    @torch.no_grad()
    def iwae(self, x, k, steps):
        mu, logsigma = self.encode(x)
        out = []
        for i in range(x.shape[0]):
            eps = torch.randn(k, self.z)
            z = mu[i] + torch.exp(logsigma[i]) * eps
            ll = self.log_likelihood(x[i:i + 1].expand(k, -1, -1, -1), self.run(self.seed(z), steps))
            log_pz = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(1)
            log_qz = (-0.5 * eps ** 2 - logsigma[i] - 0.5 * math.log(2 * math.pi)).sum(1)
            out.append(torch.logsumexp(ll + log_pz - log_qz, 0) - math.log(k))
        return torch.stack(out)


def vnca_weights(model):
    """The weights under vnca's names and layouts (inverse of tools/train_torch.load_vnca_folder)."""
    sd = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    conv = lambda w: w.permute(2, 3, 1, 0).contiguous()  # OIHW -> HWIO
    out = {}
    n_conv = sum(1 for k in sd if k.startswith('encoder.') and k.endswith('.weight') and sd[k].dim() == 4)
    for i in range(n_conv):
        out[f'encoder/conv{i}/kernel'] = conv(sd[f'encoder.{2 * i}.weight'])
        out[f'encoder/conv{i}/bias'] = sd[f'encoder.{2 * i}.bias']
    lin = sd[f'encoder.{2 * n_conv + 1}.weight']  # [out, C*H*W], (C, H, W) order
    c = sd[f'encoder.{2 * (n_conv - 1)}.weight'].shape[0]
    hw = model.side
    out['encoder/dense/kernel'] = lin.reshape(-1, c, hw, hw).permute(2, 3, 1, 0).reshape(c * hw * hw, -1).contiguous()
    out['encoder/dense/bias'] = sd[f'encoder.{2 * n_conv + 1}.bias']
    out['rule/conv_in/kernel'] = conv(sd['rule.conv_in.weight'])
    out['rule/conv_in/bias'] = sd['rule.conv_in.bias']
    out['rule/conv_out/kernel'] = conv(sd['rule.conv_out.weight'])
    return out


def load_vnca_regen(folder):
    """A `vnca` model folder of this model (model.json + weights, tfjs layouts) as a state_dict:
    the inverse of vnca_weights, so --eval-only can evaluate what vnca saved (e.g. after
    fine-tuning with vnca's own trainer, tools/train-vnca.ts)."""
    w = read_vnca_weights(folder)
    conv = lambda k: torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    sd = {}
    n_conv = sum(1 for k in w if k.startswith('encoder/conv') and k.endswith('/kernel'))
    for i in range(n_conv):
        sd[f'encoder.{2 * i}.weight'] = conv(w[f'encoder/conv{i}/kernel'])
        sd[f'encoder.{2 * i}.bias'] = torch.from_numpy(w[f'encoder/conv{i}/bias'].copy())
    dense = w['encoder/dense/kernel']
    c = w[f'encoder/conv{n_conv - 1}/kernel'].shape[3]
    hw = int(round(math.sqrt(dense.shape[0] / c)))
    sd[f'encoder.{2 * n_conv + 1}.weight'] = torch.from_numpy(np.ascontiguousarray(
        dense.reshape(hw, hw, c, -1).transpose(3, 2, 0, 1).reshape(dense.shape[1], -1)))
    sd[f'encoder.{2 * n_conv + 1}.bias'] = torch.from_numpy(w['encoder/dense/bias'].copy())
    sd['rule.conv_in.weight'] = conv(w['rule/conv_in/kernel'])
    sd['rule.conv_in.bias'] = torch.from_numpy(w['rule/conv_in/bias'].copy())
    sd['rule.conv_out.weight'] = conv(w['rule/conv_out/kernel'])
    return sd


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default='.tmp/mnist-28')
    p.add_argument('--out', default='.tmp/regen-torch')
    p.add_argument('--deadline-utc', default=None)
    p.add_argument('--max-steps', type=int, default=100_000)
    p.add_argument('--z-size', type=int, default=32)
    p.add_argument('--encoder-channels', default='16,32,64,128,256')
    p.add_argument('--p-update', type=float, default=1.0)
    p.add_argument('--steps-min', type=int, default=32)
    p.add_argument('--steps-max', type=int, default=64)
    p.add_argument('--pool', type=int, default=1024)
    p.add_argument('--damage-size', type=int, default=14)
    p.add_argument('--damage-fraction', type=float, default=0.25,
                   help='the share of each batch (taken from its pooled half) whose state is damaged; the paper: 0.25')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--clip', type=float, default=1.0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--ckpt-every', type=int, default=50)
    p.add_argument('--log-every', type=int, default=10)
    p.add_argument('--time-only', type=int, default=0)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--eval-only', type=int, default=0, help='IWAE (K=--eval-k) on this many test images, then exit')
    p.add_argument('--eval-k', type=int, default=128)
    p.add_argument('--eval-offset', type=int, default=0, help='with --eval-only: start at this test image (split an evaluation over processes)')
    p.add_argument('--state-bound', type=float, default=10.0,
                   help='cell state values beyond +-this are penalised (overflow loss), so pooled states stay bounded')
    p.add_argument('--reset-pool', action='store_true', help='with --resume: refill the pool from fresh states')
    p.add_argument('--set-lr', type=float, default=None, help='with --resume: a new learning rate')
    p.add_argument('--eval-from', default=None,
                   help='with --eval-only: evaluate the weights of this vnca model folder (e.g. models/mnist-regen)')
    args = p.parse_args()
    if not 0 <= args.damage_fraction <= 0.5:
        p.error(f'--damage-fraction: expected a share in [0, 0.5] (damage falls on the pooled half), got {args.damage_fraction}')

    torch.set_num_threads(args.threads)
    # Cell states that decay towards zero become denormal floats, which the CPU computes with
    # many times more slowly: flush them to zero.
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    stop_at = deadline_ts(args.deadline_utc)
    train = load_split(args.data, 'train')
    chans = [int(c) for c in args.encoder_channels.split(',')]
    model = RegenVNCA(args.z_size, chans, args.p_update, image_size=train.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-8)
    config = dict(zSize=args.z_size, hidden=args.z_size, nBlocks=0, encoderChannels=chans, pUpdate=args.p_update,
                  stepsRange=[args.steps_min, args.steps_max], poolSize=args.pool, damageSize=args.damage_size,
                  damageFraction=args.damage_fraction,
                  learningRate=args.lr, clipNorm=args.clip, imageSize=train.shape[-1])
    step, seconds = 0, 0.0
    pool_states, pool_images = None, None
    fill_s, fill_x = [], []
    curve = os.path.join(args.out, 'curve.csv')
    if args.resume and os.path.exists(os.path.join(args.out, 'state.pt')):
        st = torch.load(os.path.join(args.out, 'state.pt'))
        model.load_state_dict(st['model'])
        opt.load_state_dict(st['opt'])
        step, seconds = st['step'], st['seconds']
        pool_states, pool_images = st['pool_states'], st['pool_images']
        if args.reset_pool:
            pool_states, pool_images = None, None
        if args.set_lr is not None:
            for g in opt.param_groups:
                g['lr'] = args.set_lr
            config['learningRate'] = args.set_lr
        rng = np.random.default_rng(args.seed + step)
        torch.manual_seed(args.seed + step)
        log(f'resumed at step {step}')
        if not os.path.exists(curve):  # a state brought from elsewhere (training-state/): a new curve file
            with open(curve, 'w') as f:
                f.write('step,seconds,loss,recon,kl,gradNorm\n')
    elif not args.time_only and not args.eval_only:
        with open(curve, 'w') as f:
            f.write('step,seconds,loss,recon,kl,gradNorm\n')
    log(f'config {json.dumps(config)}; {V.param_count(model)} parameters; train {train.shape[0]}')

    if args.eval_only and args.eval_from:
        model.load_state_dict(load_vnca_regen(args.eval_from))
        log(f'weights from {args.eval_from}')
    if args.eval_only:
        test = load_split(args.data, 'test')[args.eval_offset:args.eval_offset + args.eval_only]
        model.eval()
        torch.manual_seed(1234 + args.eval_offset)
        steps = (args.steps_min + args.steps_max) // 2
        t0 = time.time()
        b = torch.cat([model.iwae(test[i:i + 8], args.eval_k, steps) for i in range(0, test.shape[0], 8)]).double()
        result = dict(step=step, iwae_k=args.eval_k, rollout_steps=steps, eval_offset=args.eval_offset,
                      test_images=int(b.numel()), log_px_lower_bound_nats=b.mean().item(),
                      std_err=(b.std() / math.sqrt(len(b))).item(), eval_seconds=time.time() - t0,
                      per_image=b.tolist(),
                      data='loadMnistDigits test split (28x28, binarised with seed 0), from eval_offset')
        name = f'eval-{args.eval_offset}.json'
        with open(os.path.join(args.out, name + '.tmp'), 'w') as f:
            json.dump(result, f)
        os.replace(os.path.join(args.out, name + '.tmp'), os.path.join(args.out, name))
        log(f'IWAE K={args.eval_k} on {b.numel()} test images from {args.eval_offset}, {steps} steps: '
            f'{b.mean():.2f} +- {b.std() / math.sqrt(len(b)):.2f}')
        return

    def save():
        meta = dict(config=json.dumps(config), step=str(step), seconds=f'{seconds:.0f}', format='vnca-names')
        V.save_safetensors(os.path.join(args.out, 'weights.safetensors'), vnca_weights(model), meta)
        tmp = os.path.join(args.out, 'state.pt.tmp')
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, seconds=seconds,
                        pool_states=pool_states, pool_images=pool_images), tmp)
        os.replace(tmp, os.path.join(args.out, 'state.pt'))

    perm, pos = rng.permutation(train.shape[0]), 0
    acc, n_acc, times = np.zeros(4), 0, []
    skipped = 0
    B = args.batch
    while step < args.max_steps and time.time() < stop_at:
        if args.time_only and len(times) >= args.time_only:
            break
        t0 = time.time()
        if pos + B > train.shape[0]:
            perm, pos = rng.permutation(train.shape[0]), 0
        x = train[perm[pos:pos + B]]
        pos += B
        n_pool = B // 2 if pool_states is not None else 0
        if n_pool:
            idx = rng.choice(pool_states.shape[0], n_pool, replace=False)
            init = pool_states[idx].clone()
            for j in range(round(B * args.damage_fraction)):  # damage: a square of cells zeroed, inside the grid
                s = args.damage_size
                t, l = rng.integers(0, init.shape[-1] - s + 1, size=2)
                init[j, :, t:t + s, l:l + s] = 0
            x = torch.cat([pool_images[idx], x[n_pool:]])
        fresh = x[n_pool:]
        mu, logsigma = model.encode(fresh)
        z = mu + torch.exp(logsigma) * torch.randn_like(mu)
        seeds = model.seed(z)
        if n_pool:
            seeds = torch.cat([init.contiguous(memory_format=CL), seeds])
        steps = int(rng.integers(args.steps_min, args.steps_max + 1))
        final = model.run(seeds, steps)
        recon = model.log_likelihood(x, final)
        kl = 0.5 * (mu ** 2 + torch.exp(2 * logsigma) - 2 * logsigma - 1).sum(1)
        # Overflow loss (as in the self-organising texture NCAs): states beyond +-state_bound are
        # penalised, otherwise pooled states, which run on for many rollouts, grow without bound.
        overflow = (final - final.clamp(-args.state_bound, args.state_bound)).abs().sum() / B
        loss = (-recon.sum() + kl.sum()) / B + overflow
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        if not math.isfinite(loss.item()) or not math.isfinite(gn):
            skipped += 1
            log(f'non-finite loss or gradient at step {step + 1}: skipped ({skipped} in a row)')
            if skipped >= 20:
                log('20 steps in a row skipped: stopping (the last checkpoint is kept)')
                return
            continue
        skipped = 0
        opt.step()
        # The pool: fill it with the first final states, then write every batch's states back.
        # Pooled states are kept within the bound too, so one runaway state cannot feed on itself.
        fs = final.detach().clamp(-args.state_bound, args.state_bound).contiguous()
        fx = x.detach()
        if pool_states is None:
            fill_s.append(fs); fill_x.append(fx)
            if sum(t.shape[0] for t in fill_s) >= args.pool:
                pool_states, pool_images = torch.cat(fill_s)[:args.pool], torch.cat(fill_x)[:args.pool]
                fill_s, fill_x = [], []
        else:
            others = np.setdiff1d(np.arange(pool_states.shape[0]), idx)
            slots = np.concatenate([idx, rng.choice(others, B - n_pool, replace=False)])
            pool_states[slots] = fs
            pool_images[slots] = fx
        step += 1
        dt_step = time.time() - t0
        seconds += dt_step
        times.append(dt_step)
        acc += [loss.item(), -recon.mean().item(), kl.mean().item(), gn]
        n_acc += 1
        if args.time_only:
            log(f'step {step}: {dt_step:.2f} s ({steps} steps), loss {loss.item():.1f}')
            continue
        if step % args.log_every == 0:
            m = acc / n_acc
            with open(curve, 'a') as f:
                f.write(f'{step},{seconds:.1f},{m[0]:.3f},{m[1]:.3f},{m[2]:.3f},{m[3]:.1f}\n')
            log(f'step {step}: loss {m[0]:.1f} recon {m[1]:.1f} kl(fresh) {m[2]:.1f} |g| {m[3]:.0f}; '
                f'{np.mean(times[-args.log_every:]):.2f} s/step; pool {0 if pool_states is None else pool_states.shape[0]}')
            acc, n_acc = np.zeros(4), 0
        if step % args.ckpt_every == 0:
            save()
    if not args.time_only:
        save()
        log(f'stopped at step {step}')
    else:
        log(f'mean {np.mean(times[1:]):.2f} s/step')


if __name__ == '__main__':
    main()
