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
LIMIT=$((8 * 1024 * 1024))
too_big=0
count=0
for dir in .aws-sam/build/*Function; do
    count=$((count + 1))
    name=$(basename "$dir")
    zip="$(mktemp -d)/$name.zip"
    (cd "$dir" && zip -q -9 "$zip" bootstrap)
    printf '  %-20s %8.1f MiB  (bootstrap %5.1f MiB, %s)\n' "$name" \
        "$(echo "$(stat -c %s "$zip") / 1048576" | bc -l)" \
        "$(echo "$(stat -c %s "$dir/bootstrap") / 1048576" | bc -l)" "$ARCH"
    if [ "$(stat -c %s "$zip")" -ge "$LIMIT" ]; then
        echo "  $name: zipped bootstrap is 8 MiB or more" >&2
        too_big=1
    fi
    rm -f "$zip"
done
[ "$count" -eq 7 ] || { echo "expected 7 functions, built $count" >&2; exit 1; }
[ "$too_big" -eq 0 ] || exit 1
