#!/usr/bin/env bash
# Records docs/demo.cast with ktl-lsp's own recorder and asciicast export:
#   editors/demo/make-demo-cast.sh            (from anywhere; needs .venv/bin/ktl-lsp)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/ktl-demo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export PATH="$repo/.venv/bin:$PATH"
cp "$here/demo.sh" "$here/progress.sh" "$work/"
cat >"$work/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: "2"
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
          port: 8080
YAML
cd "$work"
ktl-lsp --store "$work/store.db" run --title "ktl-lsp check: fix a manifest" --quiet -- ./demo.sh </dev/null
id="$(ktl-lsp --store "$work/store.db" sessions list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d["sessions"] if isinstance(d, dict) else d)[0]["sessionId"])')"
ktl-lsp --store "$work/store.db" sessions export "$id" -f asciicast -o "$repo/docs/demo.cast"
