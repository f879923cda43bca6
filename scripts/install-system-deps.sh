#!/usr/bin/env bash
# Installs the system packages inrun's fast paths need when they are missing: OpenBLAS headers and
# library plus a C toolchain for node-gyp (the native kernels), and clang with lld's wasm-ld (the
# WebAssembly kernels). Debian/Ubuntu via apt-get, as root; elsewhere it only says what to install
# — inrun still works without them, on its portable kernels.
set -euo pipefail

have_openblas() {
  [ -e /usr/include/cblas.h ] || [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/aarch64-linux-gnu/cblas.h ] ||
    [ -e /usr/include/openblas/cblas.h ]
}

packages=()
if ! (have_openblas && command -v g++ >/dev/null && command -v make >/dev/null); then
  packages+=(libopenblas-dev g++ make python3)
fi
if ! (command -v clang >/dev/null && command -v wasm-ld >/dev/null); then
  packages+=(clang lld)
fi

if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${packages[@]}" >/dev/null
  echo "installed ${packages[*]}"
else
  case " ${packages[*]} " in
    *" libopenblas-dev "*)
      echo "note: OpenBLAS not found; install libopenblas-dev (Debian/Ubuntu) or openblas (Homebrew) for the fast kernels" >&2
      ;;
  esac
  case " ${packages[*]} " in
    *" clang "*)
      echo "note: clang or wasm-ld not found; install clang and lld (Debian/Ubuntu, or Homebrew: llvm lld) for the WebAssembly kernels" >&2
      ;;
  esac
fi
