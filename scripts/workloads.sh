#!/usr/bin/env bash
# Runs `pulumi preview` or `pulumi up` of an environment's workloads stack (<env>-workloads) from where it can
# reach the cluster's Kubernetes API:
#   - the platform stack (<env>) has no `deployRunner` output (a public API endpoint): here, with this pulumi;
#   - it has one (a private endpoint): in the deploy runner, the CodeBuild project the platform created in the
#     VPC's private subnets. The committed HEAD is uploaded to the runner's source bucket, a build is started
#     with INFERFLEET_COMMAND set, its log is printed as it runs, and this exits 0 only if the build succeeded.
# Deploy an environment with `pulumi up -s <env>` (the platform), then `scripts/workloads.sh up <env>`.
#
#   scripts/workloads.sh preview|up ENV
#
# Needs pulumi logged in to the stacks' backend, and for the runner the AWS CLI with permission to put
# objects in the source bucket, start and read builds of the project and read its log group. Only what is
# committed is deployed through the runner (a dirty tree is reported). Every command can be replaced from
# the environment (PULUMI, AWS, GIT, PYTHON) and INFERFLEET_POLL_SECONDS shortens the wait, for tests.
set -euo pipefail

PULUMI="${PULUMI:-pulumi}"
AWS="${AWS:-aws}"
GIT="${GIT:-git}"
PYTHON="${PYTHON:-python3}"
POLL_SECONDS="${INFERFLEET_POLL_SECONDS:-10}"
WORKLOADS_SUFFIX="-workloads" # components/phases.py WORKLOADS_SUFFIX (a test keeps the two equal)
BUNDLE=""
cd "$(dirname "$0")/.." # the project (Pulumi.yaml, policy/) from wherever it is run
trap 'rm -f "$BUNDLE"' EXIT

log() {
    printf 'workloads: %s\n' "$*" >&2
}

usage() {
    echo "usage: scripts/workloads.sh preview|up ENV" >&2
    exit 2
}

# field JSON NAME: one top-level field of a JSON object, as text.
field() {
    "$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# run_here COMMAND ENV: the workloads stack from this machine, the pack at the environment's levels
# (policy/config/ENV.json; an environment without a file runs at prod's, as the pack does without config).
run_here() {
    local command="$1" stack="$2$WORKLOADS_SUFFIX" flags=(--stack "$2$WORKLOADS_SUFFIX" --policy-pack policy)
    [ -f "policy/config/$2.json" ] && flags+=(--policy-pack-config "policy/config/$2.json")
    flags+=(--non-interactive)
    if [ "$command" = up ]; then flags+=(--yes); else flags+=(--diff); fi
    "$PULUMI" stack select "$stack" >/dev/null 2>&1 || "$PULUMI" stack init "$stack"
    "$PULUMI" "$command" "${flags[@]}"
}

# print_log GROUP STREAM TOKEN: prints the stream's events after TOKEN; echoes the next token (or TOKEN).
print_log() {
    local events
    if ! events="$("$AWS" logs get-log-events --region "$region" --log-group-name "$1" --log-stream-name "$2" \
        --start-from-head ${3:+--next-token "$3"} --output json 2>/dev/null)"; then
        echo "$3" # the stream may not exist yet
        return 0
    fi
    "$PYTHON" -c '
import json, sys
page = json.loads(sys.argv[1])
for event in page.get("events", []):
    print(event["message"], end="" if event["message"].endswith("\n") else "\n", file=sys.stderr)
print(page.get("nextForwardToken", ""))
' "$events"
}

run_in_runner() {
    local command="$1" runner="$2" project bucket group key build status token="" stream
    project="$(field "$runner" projectName)"
    bucket="$(field "$runner" sourceBucket)"
    group="$(field "$runner" logGroupName)"
    region="$(field "$runner" region)"
    if [ -n "$("$GIT" status --porcelain --untracked-files=no)" ]; then
        log "uncommitted changes are not part of the run: the runner gets HEAD ($("$GIT" rev-parse --short HEAD))"
    fi
    key="sources/$("$GIT" rev-parse HEAD)-$(date +%s).tar.gz"
    BUNDLE="$(mktemp)"
    "$GIT" archive --format=tar.gz -o "$BUNDLE" HEAD
    "$AWS" s3 cp --region "$region" --only-show-errors "$BUNDLE" "s3://$bucket/$key"
    build="$("$AWS" codebuild start-build --region "$region" --project-name "$project" \
        --source-type-override S3 --source-location-override "$bucket/$key" \
        --environment-variables-override "name=INFERFLEET_COMMAND,value=$command,type=PLAINTEXT" \
        --query build.id --output text)"
    log "started $command in $project: build $build"
    stream="${build##*:}"
    while :; do
        status="$("$AWS" codebuild batch-get-builds --region "$region" --ids "$build" \
            --query 'builds[0].buildStatus' --output text)"
        token="$(print_log "$group" "$stream" "$token")"
        [ "$status" = IN_PROGRESS ] || break
        sleep "$POLL_SECONDS"
    done
    token="$(print_log "$group" "$stream" "$token")"
    log "build $build: $status"
    [ "$status" = SUCCEEDED ]
}

main() {
    [ $# -eq 2 ] || usage
    local command="$1" env="$2" runner
    case "$command" in preview | up) ;; *) usage ;; esac
    if ! runner="$("$PULUMI" stack output --stack "$env" --json deployRunner)"; then
        log "no output deployRunner from the platform stack $env: deploy it first (pulumi up -s $env)"
        # A PR that adds an environment previews its platform only: there is no cluster to preview against.
        [ "$command" = preview ] && exit 0
        exit 1
    fi
    if [ -z "$runner" ] || [ "$runner" = null ]; then
        log "$env has a public API endpoint: running pulumi $command here"
        run_here "$command" "$env"
    else
        run_in_runner "$command" "$runner"
    fi
}

main "$@"
