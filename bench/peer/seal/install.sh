#!/bin/sh
# Installs the SEAL peer of `veil bench --peer seal` (node-seal 7.0.0 and a
# Node.js 22 binary, both from the npm registry) into the directory where
# veil looks for it: $1, else ${VEIL_HOME:-$HOME/.veil}/peers/seal.
# Equivalent to `veil bench --peer seal --install-peer`. Needs npm (any
# Node.js with npm; the peer itself runs on the Node 22 binary installed).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-${VEIL_HOME:-$HOME/.veil}/peers/seal}
mkdir -p "$dest"
cp "$here/peer.mjs" "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --loglevel=error
v=$("$dest/node_modules/.bin/node" --version)
case "$v" in
  v2[2-9].*|v[3-9][0-9].*) echo "SEAL peer installed in $dest (Node.js $v)" ;;
  *) echo "installed Node.js is $v; node-seal needs 22 or later" >&2; exit 1 ;;
esac
