#!/usr/bin/env python3
"""A stand-in kubelet for the test control plane (Python 3.11, standard library only).

It runs no containers. It registers one Ready Node, keeps its heartbeat Lease renewed, binds
every unscheduled pod to that node (there is no scheduler) and then drives each pod's status,
through the `status` subresource only, the way a kubelet would report it:

  first seen    bound (pods/binding), phase Running, containers running but ready=false
  + delay       containers ready, pod Ready          (CONVOY_KUBELET_READY_DELAY, s, default 1.0;
                a namespace annotated convoy.dev/test-ready-delay: "<seconds>" sets its own)

Image markers (matched per container, on the image name):
  crash     crash-loops: restartCount +1 about every second, lastState.terminated exit 1,
            waiting CrashLoopBackOff, ready=false (restartPolicy Never: exits 1, pod Failed)
  pullfail  ErrImagePull, then ImagePullBackOff; the pod stays Pending
  jobfail   the container exits 1 after the delay
Command markers (restartPolicy Never/OnFailure pods only, matched on the container's command and
args joined), so a Job can fail while the service's own pods of the same image stay healthy:
  convoy-test-exit=N  the container exits N after the delay (reason Error, or Completed for 0)
  convoy-test-oom     the container is OOMKilled after the delay (exit 137)
Pods with restartPolicy Never/OnFailure complete after the delay (exit 0, phase Succeeded) so
Jobs finish; a failing container makes the pod Failed (Never) or crash-loop (OnFailure).
A pod with a deletionTimestamp is deleted at once (grace 0, uid precondition).
It serves no container logs: the API server cannot reach the node, so `pods/log` fails and Convoy
says "logs unavailable: ..." in a failed task's error.

Usage (with-cluster.sh starts it):
  kubelet.py --server https://127.0.0.1:PORT --ca ca.crt --cert kubelet.crt --key kubelet.key
It exits on SIGTERM/SIGINT or when its parent process goes away.
"""

import argparse
import hashlib
import heapq
import http.client
import itertools
import json
import os
import queue
import re
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

READY_DELAY = float(os.environ.get("CONVOY_KUBELET_READY_DELAY", "1.0"))
READY_DELAY_ANNOTATION = "convoy.dev/test-ready-delay"  # on a namespace: its pods' delay
CRASH_PERIOD = 1.0  # seconds between restarts of a crash-looping container
WORKERS = 8  # concurrent API calls; each worker keeps one keep-alive connection
VERBOSE = os.environ.get("CONVOY_KUBELET_VERBOSE", "") not in ("", "0")


def log(*parts):
    print(time.strftime("%H:%M:%S"), "kubelet:", *parts, file=sys.stderr, flush=True)


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():  # MicroTime, for Lease.spec.renewTime
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, code, body):
        super().__init__(f"HTTP {code}: {body[:300]!r}")
        self.code = code


class Api:
    """A tiny HTTPS client: one keep-alive connection per thread, JSON in and out."""

    def __init__(self, server, ca, cert, key):
        url = urllib.parse.urlsplit(server)
        self.host, self.port = url.hostname, url.port or 443
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        self.local = threading.local()

    def connect(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def call(self, method, path, body=None, content_type="application/json", ok=(200, 201)):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": "convoy-stand-in-kubelet"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = getattr(self.local, "conn", None) or self.connect()
            self.local.conn = conn
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status not in ok:
                raise ApiError(resp.status, text.decode(errors="replace"))
            return json.loads(text) if text else None

    def merge_patch(self, path, body):
        return self.call("PATCH", path, body, "application/merge-patch+json")

    def stream(self, path, timeout):
        """Opens a watch on its own connection; returns the response to read lines from."""
        conn = self.connect(timeout)
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read().decode(errors="replace")
            conn.close()
            raise ApiError(resp.status, body)
        return conn, resp


class Kubelet:
    def __init__(self, api, node):
        self.api, self.node = api, node
        self.node_uid = None
        self.pods = {}  # uid -> Pod state; touched only under self.lock
        self.lock = threading.Lock()
        self.work = queue.Queue()  # (function, args) for the workers
        self.timers = []  # heap of (due, seq, function, args)
        self.timer_cv = threading.Condition()
        self.seq = itertools.count()
        self.ips = itertools.count(2)
        self.delays = {}  # namespace -> ready delay (read once: tests annotate at creation)

    # ---------- scheduling: the delay is per pod, never serialised ----------

    def later(self, delay, fn, *args):
        with self.timer_cv:
            heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), fn, args))
            self.timer_cv.notify()

    def timer_loop(self):
        while True:
            with self.timer_cv:
                while not self.timers or self.timers[0][0] > time.monotonic():
                    self.timer_cv.wait(None if not self.timers else self.timers[0][0] - time.monotonic())
                _, _, fn, args = heapq.heappop(self.timers)
            self.work.put((fn, args))

    def worker_loop(self):
        while True:
            fn, args = self.work.get()
            try:
                fn(*args)
            except Exception as e:  # a pod's trouble must not stop the worker
                log(f"{getattr(fn, '__name__', fn)}: {e}")

    # ---------- the node and its heartbeat ----------

    def node_conditions(self):
        t = now()
        cond = lambda type_, status, reason, msg: {  # noqa: E731
            "type": type_, "status": status, "reason": reason, "message": msg,
            "lastHeartbeatTime": t, "lastTransitionTime": self.started_at}
        return [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (convoy stand-in)"),
        ]

    def register(self):
        self.started_at = now()
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"}
        status = {
            "capacity": capacity, "allocatable": capacity,
            "conditions": self.node_conditions(),
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "convoy", "systemUUID": "convoy", "bootID": "convoy",
                "kernelVersion": os.uname().release, "osImage": "convoy stand-in kubelet",
                "containerRuntimeVersion": "convoy://0", "kubeletVersion": os.environ.get("CONVOY_K8S_VERSION", "v0.0.0"),
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        }
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {
                    "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", "convoy.test/stand-in-kubelet": "true"}},
                "spec": {}, "status": status}
        try:
            created = self.api.call("POST", "/api/v1/nodes", node)
        except ApiError as e:
            if e.code != 409:
                raise
            created = self.api.call("GET", f"/api/v1/nodes/{self.node}")
        self.node_uid = created["metadata"]["uid"]
        # Status on create is kept for Nodes, but write it through the subresource as a kubelet does.
        self.api.merge_patch(f"/api/v1/nodes/{self.node}/status", {"status": status})
        self.renew_lease()
        log(f"node {self.node} registered, Ready")

    def renew_lease(self):
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            self.api.merge_patch(path, {"spec": spec})
        except ApiError as e:
            if e.code != 404:
                raise
            self.api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "namespace": "kube-node-lease", "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": self.node_uid}]},
                "spec": spec})

    def heartbeat_loop(self, parent):
        """Main thread: Lease every 10 s (the node lifecycle controller reads it), node
        conditions every 30 s; exits when the parent script is gone."""
        beats = 0
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                log("parent gone, exiting")
                return
            beats += 1
            try:
                if beats % 10 == 0:
                    self.renew_lease()
                if beats % 30 == 0:
                    self.api.merge_patch(f"/api/v1/nodes/{self.node}/status",
                                         {"status": {"conditions": self.node_conditions()}})
            except Exception as e:
                log(f"heartbeat: {e}")

    # ---------- pods: watch ----------

    def watch_loop(self):
        rv = None
        while True:
            try:
                if rv is None:
                    rv = self.relist()
                rv = self.watch(rv)
            except ApiError as e:
                if e.code == 410:
                    log("watch expired (410), re-listing")
                    rv = None
                else:
                    log(f"watch: {e}")
                    time.sleep(1)
            except (OSError, http.client.HTTPException, ValueError) as e:
                log(f"watch: {e!r}, resuming")
                time.sleep(0.5)

    def relist(self):
        seen, cont = set(), ""
        while True:
            q = "/api/v1/pods?limit=500" + (f"&continue={urllib.parse.quote(cont)}" if cont else "")
            page = self.api.call("GET", q)
            for pod in page["items"]:
                seen.add(pod["metadata"]["uid"])
                self.observe(pod)
            cont = page["metadata"].get("continue")
            if not cont:
                break
        with self.lock:  # forget pods deleted while we were not watching
            for uid in [u for u in self.pods if u not in seen]:
                self.pods[uid]["gone"] = True
                del self.pods[uid]
        return page["metadata"]["resourceVersion"]

    def watch(self, rv):
        path = f"/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}"
        conn, resp = self.api.stream(path, timeout=330)
        try:
            while True:
                line = resp.readline()
                if not line:
                    return rv  # the server ended the watch (timeout): resume from rv
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    raise ApiError(obj.get("code", 500), json.dumps(obj))
                rv = obj["metadata"].get("resourceVersion", rv)
                if event["type"] == "DELETED":
                    with self.lock:
                        state = self.pods.pop(obj["metadata"]["uid"], None)
                        if state:
                            state["gone"] = True
                elif event["type"] in ("ADDED", "MODIFIED"):
                    self.observe(obj)
        finally:
            conn.close()

    def observe(self, pod):
        """Called for every pod seen; starts work only for new pods and deleting ones."""
        meta, spec = pod["metadata"], pod["spec"]
        if spec.get("nodeName") not in (None, "", self.node):
            return  # a real node's pod (any cluster): not ours
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and not meta.get("deletionTimestamp"):
            return
        uid = meta["uid"]
        with self.lock:
            state = self.pods.get(uid)
            if state is None:
                state = self.pods[uid] = {
                    "uid": uid, "ns": meta["namespace"], "name": meta["name"], "pod": pod,
                    "ip": self.next_ip(), "deleting": False, "gone": False, "restarts": {},
                    "lock": threading.Lock()}
                new = True
            else:
                new = False
            if meta.get("deletionTimestamp") and not state["deleting"]:
                state["deleting"] = True
                self.work.put((self.delete_pod, (state,)))
                return
        if new and not meta.get("deletionTimestamp"):
            self.work.put((self.start_pod, (state,)))

    def next_ip(self):
        n = next(self.ips)
        return f"10.244.{(n // 250) % 250}.{n % 250 + 1}"

    # ---------- pods: status ----------

    def path(self, state, sub=""):
        return f"/api/v1/namespaces/{state['ns']}/pods/{state['name']}{sub}"

    def write_status(self, state, phase):
        """Merge-patches the status subresource with the pod's current state. One write per pod
        at a time (so a restartCount never goes back); the uid in the patch makes the write fail
        rather than touch a new pod of the same name. Returns False when the pod is gone."""
        with state["lock"]:
            if state["gone"] or state["deleting"]:
                return False
            try:
                self.api.merge_patch(self.path(state, "/status"),
                                     {"metadata": {"uid": state["uid"]}, "status": self.status(state, phase)})
                return True
            except ApiError as e:
                if e.code in (404, 409, 422):
                    state["gone"] = True
                    return False
                raise

    def delete_pod(self, state):
        state["gone"] = True
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": state["uid"]}}
        try:
            self.api.call("DELETE", self.path(state), body)
            if VERBOSE:
                log(f"deleted {state['ns']}/{state['name']}")
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    def start_pod(self, state):
        pod = state["pod"]
        if not pod["spec"].get("nodeName"):
            binding = {"apiVersion": "v1", "kind": "Binding",
                       "metadata": {"name": state["name"], "namespace": state["ns"], "uid": state["uid"]},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}}
            try:
                self.api.call("POST", self.path(state, "/binding"), binding)
            except ApiError as e:
                if e.code == 404 or (e.code == 409 and "already assigned" not in str(e)):
                    state["gone"] = True
                    return
                if e.code != 409:
                    raise
        state["start"] = now()
        state["t_sched"] = now()
        policy = pod["spec"].get("restartPolicy", "Always")
        state["policy"] = policy
        containers = pod["spec"]["containers"]
        state["kinds"] = {c["name"]: self.kind(c.get("image", ""), policy) for c in containers}
        state["exits"] = {c["name"]: self.exit_marker(c) for c in containers if policy != "Always"}
        for name, marked in state["exits"].items():
            if marked is not None and state["kinds"][name] in ("exit0", "exit1"):
                state["kinds"][name] = "exit0" if marked == (0, "Completed") else "exit1"
        self.write_status(state, "Pending" if self.any(state, "pullfail") else "Running")
        if VERBOSE:
            log(f"started {state['ns']}/{state['name']} {state['kinds']}")
        if self.any(state, "pullfail"):
            self.later(1.0, self.pull_backoff, state)
        if self.any(state, "crashloop"):
            self.later(CRASH_PERIOD, self.crash, state)
        self.later(self.ready_delay(state["ns"]), self.settle, state)

    def ready_delay(self, ns):
        with self.lock:
            if ns in self.delays:
                return self.delays[ns]
        delay = READY_DELAY
        try:
            annotations = self.api.call("GET", f"/api/v1/namespaces/{ns}")["metadata"].get("annotations") or {}
            delay = float(annotations.get(READY_DELAY_ANNOTATION, READY_DELAY))
        except (ApiError, ValueError) as e:
            log(f"namespace {ns}: {e}; ready delay {delay}s")
        with self.lock:
            self.delays[ns] = delay
        return delay

    @staticmethod
    def kind(image, policy):
        """What a container does: ok (runs), exit0/exit1 (terminates), crashloop, pullfail."""
        if "pullfail" in image:
            return "pullfail"
        fails = "crash" in image or "jobfail" in image
        if policy == "Always":
            return "crashloop" if fails else "ok"
        if policy == "OnFailure" and fails:
            return "crashloop"
        return "exit1" if fails else "exit0"

    @staticmethod
    def exit_marker(container):
        """(exit code, reason) a command marker asks for, else None."""
        text = " ".join(container.get("command", []) + container.get("args", []))
        if "convoy-test-oom" in text:
            return (137, "OOMKilled")
        match = re.search(r"convoy-test-exit=(\d+)", text)
        if match:
            code = int(match.group(1))
            return (code, "Completed" if code == 0 else "Error")
        return None

    def any(self, state, kind):
        return kind in state["kinds"].values()

    def settle(self, state):
        """After the delay: running containers become ready, terminating ones finish."""
        state["settled"] = True
        state["t_ready"] = now()
        kinds = state["kinds"].values()
        phase = "Running"
        if "pullfail" in kinds:
            return  # stays Pending in ImagePullBackOff
        if all(k in ("exit0", "exit1") for k in kinds):
            phase = "Failed" if "exit1" in kinds else "Succeeded"
        self.write_status(state, phase)
        if VERBOSE or phase != "Running":
            log(f"{state['ns']}/{state['name']} {phase}{' Ready' if self.ready(state) else ''}")

    def crash(self, state):
        if state["gone"] or state["deleting"]:
            return
        with state["lock"]:
            for name, k in state["kinds"].items():
                if k == "crashloop":
                    state["restarts"][name] = state["restarts"].get(name, 0) + 1
        if self.write_status(state, "Running"):
            self.later(CRASH_PERIOD, self.crash, state)

    def pull_backoff(self, state):
        state["pull_backoff"] = True
        self.write_status(state, "Pending")

    def ready(self, state):
        return state.get("settled") and all(k == "ok" for k in state["kinds"].values())

    def status(self, state, phase):
        """The whole pod status for the current state (merge patch replaces the lists)."""
        pod, t = state["pod"], now()
        statuses = [self.container_status(state, c, t) for c in pod["spec"]["containers"]]
        ready = self.ready(state)
        unready = [s["name"] for s in statuses if not s["ready"]]
        terminal = phase in ("Succeeded", "Failed")

        def cond(type_, ok, since):
            c = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": since}
            if not ok and type_ in ("Ready", "ContainersReady"):
                c["reason"] = "PodCompleted" if terminal else "ContainersNotReady"
                if not terminal:
                    c["message"] = f"containers with unready status: [{' '.join(unready)}]"
            return c

        since_ready = state.get("t_ready") or state["start"]
        status = {
            "phase": phase,
            "conditions": [
                cond("PodReadyToStartContainers", not terminal, state["start"]),
                cond("Initialized", True, state["start"]),
                cond("Ready", ready, since_ready),
                cond("ContainersReady", ready, since_ready),
                cond("PodScheduled", True, state["t_sched"]),
            ],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": state["ip"], "podIPs": [{"ip": state["ip"]}],
            "startTime": state["start"],
            "containerStatuses": statuses,
        }
        inits = pod["spec"].get("initContainers") or []
        if inits:
            status["initContainerStatuses"] = [{
                "name": c["name"], "image": c.get("image", ""), "imageID": self.image_id(c.get("image", "")),
                "containerID": self.container_id(state, c["name"], "init"), "ready": True, "restartCount": 0,
                "started": False, "lastState": {},
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": state["start"],
                                         "finishedAt": state["start"]}}} for c in inits]
        return status

    @staticmethod
    def image_id(image):
        """registry/repo@sha256:<a digest made from the image name>, as containerd reports it."""
        if not image:
            return ""
        path, _, last = image.split("@")[0].rpartition("/")
        repo = (path + "/" if path else "") + last.split(":")[0]
        return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"

    @staticmethod
    def container_id(state, name, n):
        return "containerd://" + hashlib.sha256(f"{state['uid']}/{name}/{n}".encode()).hexdigest()

    def container_status(self, state, c, t):
        name, image = c["name"], c.get("image", "")
        kind = state["kinds"][name]
        restarts = state["restarts"].get(name, 0)
        s = {"name": name, "image": image, "imageID": self.image_id(image), "restartCount": restarts,
             "lastState": {}, "ready": False, "started": False,
             "containerID": self.container_id(state, name, restarts)}
        settled = state.get("settled")
        if kind == "pullfail":
            reason = "ImagePullBackOff" if state.get("pull_backoff") else "ErrImagePull"
            msg = (f'failed to pull and unpack image "{image}": not found (convoy stand-in kubelet: '
                   f'the image name contains "pullfail")')
            if reason == "ImagePullBackOff":
                msg = f'Back-off pulling image "{image}": ErrImagePull: {msg}'
            s.update(imageID="", state={"waiting": {"reason": reason, "message": msg}})
            del s["containerID"]
        elif kind == "crashloop" and restarts > 0:
            s["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                      f"back-off 10s restarting failed container={name} pod={state['name']}_{state['ns']}({state['uid']})"}}
            s["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": state["start"], "finishedAt": t,
                                             "containerID": self.container_id(state, name, restarts - 1),
                                             "message": "convoy stand-in kubelet: the image name asks to crash\n"}}
        elif kind in ("exit0", "exit1") and settled:
            code, reason = state.get("exits", {}).get(name) or ((0, "Completed") if kind == "exit0" else (1, "Error"))
            s["state"] = {"terminated": {"exitCode": code, "reason": reason,
                                         "startedAt": state["start"], "finishedAt": t,
                                         "containerID": s["containerID"]}}
        else:
            s["state"] = {"running": {"startedAt": state["start"]}}
            s["started"] = True
            s["ready"] = bool(kind == "ok" and settled)
        return s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--node", default="convoy-node-0")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    parent = os.getppid()

    k = Kubelet(Api(args.server, args.ca, args.cert, args.key), args.node)
    for attempt in range(60):  # kube-node-lease may not exist yet right after /readyz
        try:
            k.register()
            break
        except (ApiError, OSError) as e:
            log(f"registering: {e}; retrying")
            time.sleep(0.5)
    else:
        sys.exit("kubelet: could not register the node")
    for target in [k.timer_loop, k.watch_loop] + [k.worker_loop] * WORKERS:
        threading.Thread(target=target, daemon=True).start()
    log(f"following pods (ready delay {READY_DELAY}s)")
    k.heartbeat_loop(parent)
    os._exit(0)


if __name__ == "__main__":
    main()
