#!/bin/sh
# {{ service }} {{ version }} (commit {{ commit }}, release {{ release }}) in {{ environment }}.
# Rendered by convoy; installs the artifact with the on-host agent and switches to it.
set -eu
export CONVOY_ARTIFACT_URL='{{ artifact.url }}'
export CONVOY_ARTIFACT_SHA256='{{ artifact.sha256 }}'
install -d -m 0755 /etc/convoy
cat > /etc/convoy/{{ service }}.env <<'CONVOY_ENV'
{%- for variable in config_env %}
{{ variable.name }}={{ variable.value }}
{%- endfor %}
{%- for dependency in dependencies %}
{{ dependency.env }}={{ dependency.url }}
{%- endfor %}
CONVOY_ENV
exec convoy host deploy --root '{{ aws.root }}' --store '{{ aws.store }}' '{{ service }}' '{{ version }}'
