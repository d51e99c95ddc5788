#!/usr/bin/env bash
# Runs a command against a real, throw-away Kubernetes control plane on 127.0.0.1:
#
#   tests/support/k8s/with-cluster.sh CMD ARGS...
#   e.g. CARGO_TARGET_DIR=... tests/support/k8s/with-cluster.sh cargo test --locked -- kubernetes
#
# 1. builds or reuses etcd, kube-apiserver, kube-controller-manager (build.sh, cached by version);
# 2. makes a CA and certificates with openssl in a temporary directory;
# 3. starts etcd, kube-apiserver, kube-controller-manager and the stand-in kubelet (kubelet.py)
#    on free loopback ports, and waits for /readyz, the `default` service account and a Ready node;
# 4. runs CMD with CONVOY_TEST_KUBECONFIG=<kubeconfig whose current context is the cluster>;
# 5. stops every process it started by PID (TERM, then KILL after 5 s) on exit, failure,
#    Ctrl-C or SIGTERM, deletes the temporary directory, and exits with CMD's status. A watchdog
#    does the same if this script itself is killed with SIGKILL.
#
# Without a terminal on stdin (CI), CMD runs in its own process group so that a SIGTERM/SIGINT
# sent to this script alone is passed on to all of CMD (cargo and its test binaries) before the
# control plane stops. With a terminal, CMD runs in the foreground as usual (Ctrl-C reaches it).
#
# Environment:
#   CONVOY_K8S_CACHE             where build.sh keeps binaries (default ~/.cache/convoy)
#   CONVOY_KUBELET_READY_DELAY   seconds from a pod's first sighting to Ready (default 1.0)
#   CONVOY_K8S_LOG_DIR           if set, the processes' logs are copied there on exit
#   CONVOY_K8S_APISERVER_ARGS, CONVOY_K8S_CONTROLLER_MANAGER_ARGS   extra flags (word-split)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -gt 0 ]] || { echo "usage: $0 CMD ARGS..." >&2; exit 2; }
say() { echo "with-cluster: $*" >&2; }
t0=$(date +%s%N)
phases=""
# Appends "<what> <milliseconds since start>" to the start-up timing line.
mark() { phases+="$1 $(( ($(date +%s%N) - t0) / 1000000 ))ms, "; }

bin="$("$here/build.sh")"
mark build.sh
k8s_version="$("$bin/kube-apiserver" --version | awk '{print $2}')"

work="$(mktemp -d "${TMPDIR:-/tmp}/convoy-k8s-XXXXXX")"
pids=()   # every control-plane process we started, in start order
names=()
cmd_pid="" watchdog_pid=""

# TERM the given processes, wait up to 5 s for them to exit, then KILL what is left.
stop_pids() {
  local pid deadline=$((SECONDS + 5))
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
}

stop_all() {
  local rc=$? deadline
  trap - EXIT INT TERM
  set +e
  if [[ -n "$cmd_pid" ]] && kill -0 "$cmd_pid" 2>/dev/null; then
    say "stopping the command (process group $cmd_pid)"
    kill -TERM -- "-$cmd_pid" 2>/dev/null
    deadline=$((SECONDS + 10))
    while kill -0 "$cmd_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "-$cmd_pid" 2>/dev/null
  fi
  [[ -n "$watchdog_pid" ]] && stop_pids "$watchdog_pid"
  # Everything but etcd (started first) at once, then etcd, so the API server can shut down cleanly.
  ((${#pids[@]} > 1)) && stop_pids "${pids[@]:1}"
  ((${#pids[@]} > 0)) && stop_pids "${pids[0]}"
  if [[ -n "${CONVOY_K8S_LOG_DIR:-}" ]]; then mkdir -p "$CONVOY_K8S_LOG_DIR" && cp "$work"/*.log "$CONVOY_K8S_LOG_DIR"/; fi
  rm -rf "$work"
  exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT   # exit runs stop_all
trap 'exit 143' TERM

# Starts a process in the background, logging to $work/<name>.log.
start() {
  local name="$1"; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!); names+=("$name")
}

# Fails with the tail of each dead process's log (or of every log on a timeout).
fail() {
  local i
  say "start-up failed: $* (${phases%, })"
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null || [[ "$*" == *timed* ]]; then
      say "---- last lines of ${names[i]}.log ----"; tail -n 30 "$work/${names[i]}.log" >&2
    fi
  done
  exit 1
}

# Waits up to $1 seconds for the command after it to succeed, checking that nothing died.
wait_for() {
  local timeout="$1" what="$2" deadline pid; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a process exited while waiting for $what"; done
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

# ---- certificates (see certs.sh); the control plane runs in $work, so paths are relative ----
orig_dir="$PWD"
cd "$work"
"$here/certs.sh" "$work" >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }

# ---- free loopback ports, picked now (etcd client, etcd peer, apiserver) ----
read -r etcd_port peer_port api_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
server="https://127.0.0.1:$api_port"

# ---- etcd ----
start etcd "$bin/etcd" --name=convoy --data-dir="$work/etcd" --log-level=warn \
  --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="convoy=http://127.0.0.1:$peer_port" --unsafe-no-fsync
wait_for 30 "etcd" curl -fsS "http://127.0.0.1:$etcd_port/health"
mark etcd

# ---- kube-apiserver ----
# Node,RBAC authorization; default admission plugins; every GA API (apps/v1, batch/v1,
# autoscaling/v2, policy/v1, coordination.k8s.io/v1) is served by default. The endpoint
# reconciler is off: the `kubernetes` Service cannot have a loopback endpoint.
# shellcheck disable=SC2086
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --cert-dir="$work/apiserver" --tls-cert-file=apiserver.crt --tls-private-key-file=apiserver.key \
  --client-ca-file=ca.crt \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
  --service-cluster-ip-range=10.96.0.0/16 \
  --authorization-mode=Node,RBAC \
  --endpoint-reconciler-type=none \
  --allow-privileged=true --profiling=false \
  ${CONVOY_K8S_APISERVER_ARGS:-}

# kubeconfigs: one per client identity, certificates embedded so a copy works anywhere.
kubeconfig() { # user file
  python3 - "$1" "$server" "$work" >"$2" <<'EOF'
import base64, sys
user, server, work = sys.argv[1:]
b64 = lambda f: base64.b64encode(open(f"{work}/{f}", "rb").read()).decode()
print(f"""apiVersion: v1
kind: Config
clusters:
- name: convoy-k8s
  cluster:
    server: {server}
    certificate-authority-data: {b64("ca.crt")}
users:
- name: {user}
  user:
    client-certificate-data: {b64(user + ".crt")}
    client-key-data: {b64(user + ".key")}
contexts:
- name: convoy-k8s
  context:
    cluster: convoy-k8s
    user: {user}
    namespace: default
current-context: convoy-k8s""")
EOF
}
kubeconfig admin "$work/kubeconfig"
kubeconfig controller-manager "$work/controller-manager.kubeconfig"

api() { curl -fsS --cacert ca.crt --cert admin.crt --key admin.key "$server$1"; }
wait_for 60 "kube-apiserver /readyz" api /readyz
mark kube-apiserver

# ---- the stand-in kubelet (needs only the API server) ----
start kubelet env CONVOY_K8S_VERSION="$k8s_version" python3 "$here/kubelet.py" \
  --server "$server" --ca ca.crt --cert kubelet.crt --key kubelet.key --node convoy-node-0

# ---- kube-controller-manager ----
# All default controllers (1.34 skips the cloud provider's by itself, 1.37 no longer has them,
# and naming them with "-name" is an error there); each controller with its own service account
# (as kubeadm does; =false starts ~4 s faster). No HTTPS port of its own (--secure-port=0).
# shellcheck disable=SC2086
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig=controller-manager.kubeconfig --secure-port=0 --leader-elect=false \
  --controllers='*' \
  --use-service-account-credentials=true \
  --service-account-private-key-file=sa.key --root-ca-file=ca.crt \
  --cluster-signing-cert-file=ca.crt --cluster-signing-key-file=ca.key \
  ${CONVOY_K8S_CONTROLLER_MANAGER_ARGS:-}
wait_for 60 "the default namespace's service account" api /api/v1/namespaces/default/serviceaccounts/default
mark controller-manager

node_ready() { api /api/v1/nodes/convoy-node-0 | python3 -c '
import json, sys
conds = json.load(sys.stdin)["status"]["conditions"]
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else 1)'; }
wait_for 30 "node convoy-node-0 Ready" node_ready
mark "node Ready"
say "kubernetes $k8s_version at $server; ready after: ${phases%, } (logs in $work)"

# If this script is SIGKILLed, nothing above runs: the watchdog then kills the control plane
# and CMD's process group (its id is in $work/cmd.pgid).
(
  trap - INT TERM; set +e
  while kill -0 $$ 2>/dev/null; do sleep 1; done
  [[ -f "$work/cmd.pgid" ]] && kill -KILL -- "-$(cat "$work/cmd.pgid")"
  kill -KILL "${pids[@]}"; rm -rf "$work"
) >/dev/null 2>&1 &
watchdog_pid=$!

export CONVOY_TEST_KUBECONFIG="$work/kubeconfig"
cd "$orig_dir"
set +e
if [[ -t 0 ]]; then
  "$@"
  rc=$?
else
  set -m; "$@" & cmd_pid=$!; set +m   # own process group (see the top)
  echo "$cmd_pid" >"$work/cmd.pgid"
  wait "$cmd_pid"
  rc=$?
  cmd_pid=""
fi
set -e
exit "$rc"
