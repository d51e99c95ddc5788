#!/usr/bin/env bash
# Makes the test control plane's certificates in DIR with openssl (EC P-256, valid 2 days):
#   ca.{crt,key}                  the cluster CA (client CA, serving CA, CSR signer)
#   apiserver.{crt,key}           serving cert for 127.0.0.1 and localhost
#   admin.{crt,key}               client cert: convoy-admin in group system:masters (the tests)
#   kubelet.{crt,key}             client cert: convoy-kubelet in system:masters (it binds pods,
#                                 which a node identity may not do: there is no scheduler)
#   controller-manager.{crt,key}  client cert: system:kube-controller-manager (bootstrap RBAC)
#   sa.key, sa.pub                service-account token signing key pair
#
#   tests/support/k8s/certs.sh DIR
set -euo pipefail
cd "$1"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 -new "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=convoy-test-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# leaf NAME SUBJECT EXTENSIONS...: a key and a certificate signed by the CA (never a CA itself).
leaf() {
  local name="$1" subject="$2"; shift 2
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "$@" >"$name.ext"
  openssl req -new "${ec[@]}" -keyout "$name.key" -subj "$subject" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -extfile "$name.ext" -out "$name.crt"
  rm "$name.csr" "$name.ext"
}
leaf apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
leaf admin "/O=system:masters/CN=convoy-admin" "extendedKeyUsage=clientAuth"
leaf kubelet "/O=system:masters/CN=convoy-kubelet" "extendedKeyUsage=clientAuth"
leaf controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key
openssl pkey -in sa.key -pubout -out sa.pub
