#!/bin/sh
# Builds the api service into dist/: what an artifact of this service holds.
set -eu
rm -rf dist
mkdir -p dist/bin
cp src/* dist/
printf '%s\n' "${CONVOY_VERSION:-dev}" > dist/VERSION
for tool in health prepare deployed migrate; do
  cp "tools/$tool" "dist/bin/$tool"
  chmod 755 "dist/bin/$tool"
done
