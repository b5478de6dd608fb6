#!/usr/bin/env bash
# Installs what the PyTorch peer columns of `npm run bench` need: Debian's python3-torch
# (and numpy, which tools/vnca_torch.py imports) for /usr/bin/python3.
# Not run by CI; without it the benchmark still runs and leaves the peer columns empty.
set -euo pipefail
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "python3-torch is already installed: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends python3 python3-torch python3-numpy
/usr/bin/python3 -c 'import torch; print("installed torch", torch.__version__)'
