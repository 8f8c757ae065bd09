#!/usr/bin/env bash
# The demo recorded into docs/demo.cast (editors/EDITORS_SECTION.md).
type_cmd() {
  printf '\033[1;32m$\033[0m '
  local s="$1" i
  for ((i = 0; i < ${#s}; i++)); do printf '%s' "${s:i:1}"; sleep 0.03; done
  printf '\n'; sleep 0.3
}
type_cmd "cat web.yaml"
cat web.yaml; sleep 1
type_cmd "ktl-lsp check web.yaml"
ktl-lsp check web.yaml; echo "(exit $?)"; sleep 1.5
type_cmd "sed -i 's/replicas: \"2\"/replicas: 2/; /^          port: 8080/d' web.yaml && ktl-lsp check web.yaml"
sed -i 's/replicas: "2"/replicas: 2/; /^          port: 8080/d' web.yaml && ktl-lsp check web.yaml; echo "(exit $?)"; sleep 1
type_cmd "./progress.sh"
./progress.sh; sleep 1
