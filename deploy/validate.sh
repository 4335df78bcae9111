#!/usr/bin/env bash
# validate.sh checks the example Kubernetes manifests in deploy/kubernetes
# against the Kubernetes API's JSON schemas, offline, with kubeconform in
# strict mode (unknown fields are errors), for the oldest and the newest
# Kubernetes version in KUBE_VERSIONS; then checks that each deliberately
# broken manifest in deploy/testdata/broken fails, so that a validator that
# passes everything cannot go unnoticed.
#
# kubeconform comes from the Go module proxy (go run, nothing added to
# go.mod). Its default schema source is on GitHub, which CI cannot reach,
# so the schemas come from the PyPI package kubernetes-validate, which
# bundles them per Kubernetes version; the wheel is fetched once with pip
# (no install, no dependencies) and the schema folders of KUBE_VERSIONS are
# unpacked into a cache folder (EXACTLY_SCHEMA_CACHE, default
# ~/.cache/exactly). Its "-local-strict" folders name files as
# kubeconform expects (statefulset-apps-v1.json) and share one
# _definitions.json; their references to it name it by an https URL
# (https://kubernetes.io/api/_definitions.json, through each file's $id),
# which kubeconform would fetch: the unpacking drops the $id and makes the
# references relative, so they resolve to the file beside. Nothing else in
# the schemas is changed.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM=github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0
KUBE_VALIDATE_VERSION=1.37.0
KUBE_VERSIONS=(1.30.0 1.37.0)
CACHE=${EXACTLY_SCHEMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exactly}/kubernetes-validate-$KUBE_VALIDATE_VERSION

# schemas unpacks the schema folders of KUBE_VERSIONS from the wheel.
schemas() {
	local v missing=()
	for v in "${KUBE_VERSIONS[@]}"; do
		[ -f "$CACHE/v$v-local-strict/_definitions.json" ] || missing+=("$v")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	mkdir -p "$CACHE"
	local wheel="$CACHE/kubernetes_validate-$KUBE_VALIDATE_VERSION-py3-none-any.whl"
	if [ ! -f "$wheel" ]; then
		python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE" "kubernetes-validate==$KUBE_VALIDATE_VERSION"
	fi
	python3 - "$wheel" "$CACHE" "${missing[@]}" <<'PY'
import json, os, sys, zipfile
wheel, dest, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
base = "kubernetes_validate/kubernetes-json-schema/"
with zipfile.ZipFile(wheel) as z:
    for v in versions:
        prefix = base + "v" + v + "-local-strict/"
        names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
        if not names:
            sys.exit("kubernetes-validate " + wheel + " has no schemas for Kubernetes " + v)
        out = dest + "/.unpack/v" + v + "-local-strict/"
        os.makedirs(out)
        for n in names:
            schema = json.loads(z.read(n))
            schema.pop("$id", None)
            text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
            with open(out + n[len(prefix):], "w") as f:
                f.write(text)
PY
	for v in "${missing[@]}"; do
		rm -rf "$CACHE/v$v-local-strict"
		mv "$CACHE/.unpack/v$v-local-strict" "$CACHE/"
	done
	rm -rf "$CACHE/.unpack"
}

# kubeconform validates the files or folders given against Kubernetes $1.
# Kustomization files are kustomize's input, not API objects: skipped.
kubeconform() {
	local v=$1
	shift
	go run "$KUBECONFORM" -strict -summary -skip Kustomization \
		-kubernetes-version "$v" \
		-schema-location "$CACHE/v$v-local-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
		"$@"
}

schemas
for v in "${KUBE_VERSIONS[@]}"; do
	echo "deploy/kubernetes on Kubernetes $v:"
	kubeconform "$v" deploy/kubernetes
done

# Every broken copy must fail, on the newest version; each says in its
# first line what is wrong with it.
v=${KUBE_VERSIONS[-1]}
status=0
for f in deploy/testdata/broken/*.yaml; do
	if out=$(kubeconform "$v" "$f" 2>&1); then
		echo "FAIL: $f passed the validation; it must not: $(head -1 "$f")"
		echo "$out"
		status=1
	else
		echo "ok: $f is rejected: $(echo "$out" | grep -m1 -e ' - ' || echo "$out" | head -1)"
	fi
done
exit $status
