"""PyTorch peer of `npm run bench`: times the same VNCA jobs with the reference model.

    /usr/bin/python3 bench/peer/vnca_peer.py '<job json>'     # one job, as bench/run.ts sends it
    /usr/bin/python3 bench/peer/vnca_peer.py --check          # prints {"torch": version} or fails

The model is tools/vnca_torch.py (the reference the library is tested against), imported,
not re-written. A job is the JSON of a `TimedJob` from bench/jobs.ts (kind 'train' or
'generate', model.options in the library's option names, batch, runs, warmupBatch) plus
`threads`. It prints one line `@@bench-result {json}` with the wall and CPU times (all threads) in ms and the peak
RSS (ru_maxrss) of this process.

What is timed, to match the library's public calls:
- train: zero_grad, negative ELBO with one posterior sample (VNCA.loss), backward,
  clip_grad_norm_(10), Adam(lr 1e-4).step() -- `model.trainStep(batch)`;
- generate: z ~ N(0, I), decode, sigmoid of channel 0, under no_grad -- `model.sample(n)`.
Input images are random binary images (the values do not change the work).
"""
import json
import os
import resource
import sys
import time

# Idle OpenMP threads sleep instead of spinning, as in tools/train_torch.py: the machine is
# shared, and spinning threads would take time from the other jobs.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

MARK = '@@bench-result '
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

# Library option name -> reference config key.
OPTION_NAMES = {
    'zSize': 'z_size',
    'hidden': 'hidden',
    'nBlocks': 'n_blocks',
    'encoderChannels': 'encoder_channels',
    'stepsPerDoubling': 'steps_per_doubling',
    'nDoublings': 'n_doublings',
    'pUpdate': 'p_update',
    'imageSize': 'image_size',
}
# Options that do not change the work timed (or that the reference does not have).
IGNORED = {'learningRate', 'clipNorm', 'checkpoint'}


def reference_config(options):
    cfg = {}
    for key, value in options.items():
        if key in IGNORED:
            continue
        if key not in OPTION_NAMES:
            raise SystemExit(f'vnca_peer: option {key!r} has no PyTorch equivalent')
        cfg[OPTION_NAMES[key]] = value
    return cfg


def run(job):
    import torch
    import vnca_torch as V

    torch.set_num_threads(int(job.get('threads', 2)))
    torch.manual_seed(0)
    model = V.VNCA(**reference_config(job['model']['options']))
    size = model.config['image_size']
    z_size = model.config['z_size']
    opt = torch.optim.Adam(model.parameters(), lr=job['model']['options'].get('learningRate', 1e-4))
    clip = job['model']['options'].get('clipNorm', 10.0)
    loss_value = [None]

    def once(n):
        if job['kind'] == 'train':
            x = (torch.rand(n, 1, size, size) > 0.5).float()
            c0 = time.process_time()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, _, _ = model.loss(x)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            loss_value[0] = float(loss)
            return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        c0 = time.process_time()
        t0 = time.perf_counter()
        with torch.no_grad():
            z = torch.randn(n, z_size)
            images = torch.sigmoid(model.decode(z)[:, :1])
            images.contiguous()
        return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000

    if job.get('warmupBatch', 0) > 0:
        once(job['warmupBatch'])
    ms, cpu_ms = [], []
    for i in range(job['runs']):
        wall, cpu = once(job['batch'])
        ms.append(wall)
        cpu_ms.append(cpu)
        print(f"  [peer] {job['kind']} {job['model']['name']} b{job['batch']} run {i + 1}/{job['runs']}: {ms[-1]:.0f} ms",
              file=sys.stderr, flush=True)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    out = dict(kind=job['kind'], ms=ms, cpuMs=cpu_ms, peakRss=peak_rss, torch=torch.__version__,
               threads=torch.get_num_threads())
    if loss_value[0] is not None:
        out['loss'] = loss_value[0]
    return out


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    if sys.argv[1] == '--check':
        import torch
        print(MARK + json.dumps(dict(torch=torch.__version__)))
        return
    print(MARK + json.dumps(run(json.loads(sys.argv[1]))), flush=True)


if __name__ == '__main__':
    main()
