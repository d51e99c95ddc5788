#!/bin/sh
# Builds the web service into dist/: what an artifact of this service holds.
set -eu
rm -rf dist
mkdir -p dist/bin
cp src/* dist/
printf '%s\n' "${CONVOY_VERSION:-dev}" > dist/VERSION
for tool in health prepare deployed checkout; do
  cp "tools/$tool" "dist/bin/$tool"
  chmod 755 "dist/bin/$tool"
done
