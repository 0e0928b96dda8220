#!/usr/bin/env bash
# `make package`: sam build with cargo-lambda (from the infra venv) and each
# function's zipped size. arm64 when the Rust target can be installed;
# otherwise x86_64, said out loud (the template's Architecture parameter
# must then be x86_64 at deploy time).
set -euo pipefail
VENV=${VENV_INFRA:-.venv-infra}
export PATH="$PWD/$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
ARCH=arm64
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
   && ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    ARCH=x86_64
    echo "NOTE: the aarch64 Rust target could not be installed here; building x86_64."
    echo "      Deploy with --parameter-overrides Architecture=x86_64."
fi
echo "Building the seven functions for $ARCH with cargo-lambda (release; several minutes on 2 cores)"
start=$(date +%s)
sam build --beta-features --template-file infra/template.yaml --parameter-overrides "Architecture=$ARCH"
echo "Built in $(( $(date +%s) - start )) s. Zipped sizes:"
for dir in .aws-sam/build/*Function; do
    name=$(basename "$dir")
    zip="$(mktemp -d)/$name.zip"
    (cd "$dir" && zip -q -9 "$zip" bootstrap)
    printf '  %-20s %8.1f MiB  (bootstrap %5.1f MiB, %s)\n' "$name" \
        "$(echo "$(stat -c %s "$zip") / 1048576" | bc -l)" \
        "$(echo "$(stat -c %s "$dir/bootstrap") / 1048576" | bc -l)" "$ARCH"
    rm -f "$zip"
done
