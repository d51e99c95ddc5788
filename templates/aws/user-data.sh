#!/bin/sh
# Rendered by convoy for one revision of a service. The on-host agent fetches the artifact and
# checks its sha256, reads the revision's secrets from SSM Parameter Store with the instance's
# role, writes the service's environment file (mode 0600), runs `prepare` and the health
# command, swings `live`, and completes the launch hook: CONTINUE if all passed, ABANDON with
# the reason otherwise. Every value is one shell word (`shell`); the environment travels as
# base64. No secret is ever written here: user data is readable by whoever describes instances.
set -eu
umask 077
# Live flags: the agent copies the SSM parameter to <root>/flags.json (CONVOY_FLAGS_FILE)
# before it deploys, and a systemd timer every 30 s after, replacing the file atomically: a
# `convoy flags set` reaches every instance within about 30 s, a service rereading the file
# within 60 s. Without systemd only the copy at launch is made.
if command -v systemctl >/dev/null 2>&1; then
  printf '[Unit]\nDescription=convoy: copy the live flags from SSM\n[Service]\nType=oneshot\nExecStart=%s host flags-sync --root %s --region %s --parameter %s\n' \
    "$(command -v convoy)" {{ aws.root | shell }} {{ aws.region | shell }} {{ aws.flags | shell }} \
    > /etc/systemd/system/convoy-flags.service
  printf '[Unit]\nDescription=convoy: refresh the live flags every 30 s\n[Timer]\nOnActiveSec=30\nOnUnitActiveSec=30\nAccuracySec=1\n[Install]\nWantedBy=timers.target\n' \
    > /etc/systemd/system/convoy-flags.timer
  systemctl daemon-reload && systemctl enable --now convoy-flags.timer \
    || echo "convoy: the flags timer did not start; flags are copied at launch only" >&2
fi
exec convoy host deploy \
  --root {{ aws.root | shell }} \
  --store {{ aws.store | shell }} \
  --sha256 {{ artifact.sha256 | shell }} \
  --region {{ aws.region | shell }} \
  --secrets {{ aws.parameters | shell }} \
  --env-file {{ aws.env_file | shell }} \
  --env-base64 {{ aws.environment | json | base64 | shell }} \
  --lifecycle-hook {{ aws.launch_hook | shell }} \
  --group {{ aws.group | shell }} \
  --flags {{ aws.flags | shell }} \
  -- {{ service | shell }} {{ version | shell }}
