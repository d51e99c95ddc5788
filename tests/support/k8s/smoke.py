#!/usr/bin/env python3
"""Smoke test of the test control plane (Python standard library only; there is no kubectl):

  tests/support/k8s/with-cluster.sh python3 tests/support/k8s/smoke.py [--pods N]

In a fresh namespace: a Deployment of 2 becomes available and its Service gets 2 ready
endpoints; a `crash` image reaches CrashLoopBackOff with a rising restartCount; a `pullfail`
image reaches ImagePullBackOff; a Job completes and a `jobfail` Job fails; an autoscaling/v2 HPA
and a policy/v1 PDB are accepted; deleting the namespace finishes. Prints each step's time.
With --pods N, also a Deployment of N replicas becomes available (the kubelet keeping up).
"""

import base64
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request


def client():
    """An opener for the kubeconfig in CONVOY_TEST_KUBECONFIG (the one with-cluster.sh writes)."""
    text = open(os.environ["CONVOY_TEST_KUBECONFIG"]).read()
    field = lambda name: re.search(rf"{name}: (\S+)", text).group(1)  # noqa: E731
    tmp = tempfile.mkdtemp()
    files = {}
    for name in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        files[name] = os.path.join(tmp, name)
        open(files[name], "wb").write(base64.b64decode(field(name)))
    ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
    ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    return field("server"), urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))


SERVER, OPENER = client()


def call(method, path, body=None, ok404=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(SERVER + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with OPENER.open(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        if ok404 and e.code == 404:
            return None
        raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read().decode()[:500]}")


def wait(what, check, timeout=60):
    start = time.monotonic()
    while True:
        result = check()
        if result:
            print(f"ok   {what} ({time.monotonic() - start:.1f} s)", flush=True)
            return result
        if time.monotonic() - start > timeout:
            raise SystemExit(f"FAIL {what}: not after {timeout} s")
        time.sleep(0.25)


def deployment(name, image, replicas):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def job(name, image):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "main", "image": image}]}}}}


def pods(ns, app):
    return call("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}")["items"]


def waiting_reason(ns, app):
    for p in pods(ns, app):
        for c in p.get("status", {}).get("containerStatuses", []):
            w = c.get("state", {}).get("waiting")
            if w:
                return w["reason"], c["restartCount"]
    return None, 0


def job_condition(ns, name):
    conds = call("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}").get("status", {}).get("conditions", [])
    return {c["type"] for c in conds if c["status"] == "True"}


def main():
    ns = f"smoke-{os.getpid()}"
    print("server version", call("GET", "/version")["gitVersion"])
    for gv in ("apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "coordination.k8s.io/v1"):
        call("GET", f"/apis/{gv}")
    print("ok   apps/v1 batch/v1 autoscaling/v2 policy/v1 coordination.k8s.io/v1 served")
    call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    call("POST", base, deployment("web", "registry.example.com/web:1", 2))
    call("POST", f"/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    call("POST", base, deployment("boom", "registry.example.com/crash:1", 1))
    call("POST", base, deployment("nopull", "registry.example.com/pullfail:1", 1))
    call("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job("once", "registry.example.com/task:1"))
    call("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job("bad", "registry.example.com/jobfail:1"))
    call("POST", f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 4, "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})
    print("ok   autoscaling/v2 HorizontalPodAutoscaler accepted")
    call("POST", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    print("ok   policy/v1 PodDisruptionBudget accepted")

    wait("Deployment web availableReplicas == 2",
         lambda: call("GET", f"{base}/web").get("status", {}).get("availableReplicas") == 2)
    wait("Service web has 2 ready endpoints", lambda: sum(
        1 for s in call("GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector="
                               "kubernetes.io%2Fservice-name%3Dweb")["items"]
        for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready")) == 2)
    wait("crash image in CrashLoopBackOff with restartCount >= 2",
         lambda: waiting_reason(ns, "boom")[0] == "CrashLoopBackOff" and waiting_reason(ns, "boom")[1] >= 2)
    wait("pullfail image in ImagePullBackOff", lambda: waiting_reason(ns, "nopull")[0] == "ImagePullBackOff")
    wait("Job once Complete", lambda: "Complete" in job_condition(ns, "once"))
    wait("Job bad Failed", lambda: "Failed" in job_condition(ns, "bad"))
    wait("PDB web observed", lambda: call("GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/web")
         .get("status", {}).get("currentHealthy") == 2)

    if "--pods" in sys.argv:
        n = int(sys.argv[sys.argv.index("--pods") + 1])
        call("POST", base, deployment("many", "registry.example.com/many:1", n))
        wait(f"Deployment many availableReplicas == {n}",
             lambda: call("GET", f"{base}/many").get("status", {}).get("availableReplicas") == n, 300)
        call("DELETE", f"{base}/many")
        wait(f"{n} pods gone after deleting the Deployment", lambda: not pods(ns, "many"), 300)

    call("DELETE", f"/api/v1/namespaces/{ns}")
    wait("namespace deletion finished", lambda: call("GET", f"/api/v1/namespaces/{ns}", ok404=True) is None, 120)
    print("smoke test passed")


if __name__ == "__main__":
    sys.exit(main())
