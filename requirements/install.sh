#!/bin/sh
# Install loanrisk's locked dependencies and loanrisk itself into the virtual environment $1.
# The one install recipe: `make` runs it for CI and the README, the Dockerfile for the image.
#   requirements/install.sh VENV serve|runtime|dask [--editable]
set -eu
venv=$1
set_name=$2
editable=${3:-}
here=$(dirname "$0")
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$here/$set_name.lock"
if [ "$editable" = "--editable" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir --no-deps -e "$here/.."
else
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir --no-deps "$here/.."
fi
