#!/usr/bin/env bash
# Build (or reuse) the test control plane: kube-apiserver, kube-controller-manager, etcd.
#
#   tests/support/k8s/build.sh        # prints the bin directory on stdout
#
# Binaries go to ${CONVOY_K8S_CACHE:-$HOME/.cache/convoy}/k8s-<k8s>-etcd-<etcd>/bin, outside
# the clone, keyed by the versions in ./go.mod and ./etcd/go.mod: a version bump builds a new
# directory, a cached one is reused in well under a second. Go's own caches stay in their
# default places (~/go/pkg/mod, ~/.cache/go-build) so later builds on the machine reuse them.
#
# Needs Go >= the `go` lines of both go.mod files (1.26 for etcd 3.6.16) and the Go module proxy.
# Measured on the 2-core CI machine kind: see README.md next to this file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The version of a module required in a go.mod (first "module vX.Y.Z" pair on a line).
required_version() { awk -v m="$1" '{ for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) { print $(i+1); exit } }' "$2"; }

k8s_version="$(required_version k8s.io/kubernetes "$here/go.mod")"
etcd_version="$(required_version go.etcd.io/etcd/server/v3 "$here/etcd/go.mod")"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { echo "build.sh: cannot read the versions from go.mod" >&2; exit 1; }

cache="${CONVOY_K8S_CACHE:-$HOME/.cache/convoy}"
dir="$cache/k8s-$k8s_version-etcd-$etcd_version"

# Fast path: a complete build of these versions exists (the stamp is written last).
if [[ -f "$dir/complete" ]]; then
  echo "$dir/bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build the test control plane (see DEPENDENCIES.md)" >&2; exit 1; }
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.build-k8s-XXXXXX")"; chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "build.sh: building kube-apiserver, kube-controller-manager $k8s_version and etcd $etcd_version into $dir (first build on a 2-core machine: ~12 min)" >&2
start=$SECONDS

# Version stamps as kubernetes' hack/lib/version.sh sets them, so /version reports the real release.
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
# The release's tag time (the module proxy's .info for k8s.io/kubernetes) as the build date.
build_date="$(cd "$here" && go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
build_date="${build_date:-1970-01-01T00:00:00Z}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"
# One `go build` at a time: the two Kubernetes commands share most packages.
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/etcd" go.etcd.io/etcd/server/v3)

"$tmp/bin/kube-apiserver" --version >&2
"$tmp/bin/etcd" --version >&2
touch "$tmp/complete"
# Publish atomically; if a concurrent build won the race, keep theirs.
mv -T "$tmp" "$dir" 2>/dev/null || [[ -f "$dir/complete" ]] || { echo "build.sh: cannot move the build to $dir" >&2; exit 1; }
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$dir/bin"
