#!/usr/bin/env bash
# Installs the system packages inrun's fast path needs (OpenBLAS headers and library, a C
# toolchain for node-gyp) when they are missing. Debian/Ubuntu via apt-get, as root; elsewhere it
# only says what to install — inrun still works without them, on its portable kernels.
set -euo pipefail

have_openblas() {
  [ -e /usr/include/cblas.h ] || [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/aarch64-linux-gnu/cblas.h ] ||
    [ -e /usr/include/openblas/cblas.h ]
}

if have_openblas && command -v g++ >/dev/null && command -v make >/dev/null; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libopenblas-dev g++ make python3 >/dev/null
  echo "installed libopenblas-dev and a C toolchain"
else
  echo "note: OpenBLAS not found; install libopenblas-dev (Debian/Ubuntu) or openblas (Homebrew) for the fast kernels" >&2
fi
