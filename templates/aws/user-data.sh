#!/bin/sh
# Rendered by convoy for one revision of a service. The on-host agent fetches the artifact and
# checks its sha256, reads the revision's secrets from SSM Parameter Store with the instance's
# role, writes the service's environment file (mode 0600), runs `prepare` and the health
# command, swings `live`, and completes the launch hook: CONTINUE if all passed, ABANDON with
# the reason otherwise. Every value is one shell word (`shell`); the environment travels as
# base64. No secret is ever written here: user data is readable by whoever describes instances.
set -eu
umask 077
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
  -- {{ service | shell }} {{ version | shell }}
