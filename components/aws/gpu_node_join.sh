#!/usr/bin/env bash
# Decides, on every boot of a GPU node, whether it joins the EKS cluster.
#
# EC2 Auto Scaling says where an instance is headed in the instance metadata item
# autoscaling/target-lifecycle-state. A warm-pool instance boots once to be prepared (Warmed:*) and
# boots again when the group puts it in service (InService); cloud-init runs user data on the first
# boot only, so a systemd unit runs this script on every boot, and after every resume from hibernation
# (a hibernated warm instance resumes rather than boots when it goes in service):
#   Warmed:*    pre-pull the serving images into containerd and do NOT join: a warmed instance that
#               registered would be a node the scheduler uses and the autoscaler does not count;
#   InService   join with nodeadm, once (a marker file records it);
#   other       ask again, a bounded number of times, then fail so that systemd retries.
# An instance outside any Auto Scaling group has no such metadata item: it joins, unless the user
# data said the group has a warm pool, in which case the state must be known first.
#
# A warm-pool group has a launch lifecycle hook, which fires both when an instance is warmed and when
# it goes in service: Auto Scaling holds the instance in Pending:Wait (not stopped, not InService)
# until this script completes the hook, once the images are pulled or the node has joined. Without
# that, Auto Scaling stops a warming instance as soon as it runs, cutting the pre-pull short.
#
# What a warm instance pre-pulls is listed in an SSM parameter the user data names (the program writes the
# list there, so an image rollout changes no launch template): read at every warm boot.
#
# A node that comes back into service (reused on scale-in, then taken out of the warm pool again) was
# cordoned and drained by aws-node-termination-handler when Auto Scaling stopped it: in queue mode the
# handler acts on EC2 stopping events and never uncordons. Its Node object survives the stop, so the node
# would rejoin unschedulable. After a rejoin the script uncordons its own Node, with the node role's token
# (the EKS access entry maps it to system:node:<name>; the NodeRestriction admission plugin lets a node
# update its own Node's spec.unschedulable, though not its taints).
#
# nodeadm sets the NVMe instance stores up as one RAID0 array when it joins. A stop wipes instance
# stores, so an instance that joined, went back to a warm pool on scale-in and is in service again has
# an array that is gone and an mdadm config that still names it: nodeadm then fails to format a device
# that does not exist. Such an instance forgets the array and runs nodeadm again, which builds a new one.
#
# Every path and endpoint can be overridden from the environment, so tests can run this for real
# against fake curl, ctr, nodeadm, systemctl, mountpoint and aws.
set -euo pipefail

IMDS_ENDPOINT="${IMDS_ENDPOINT:-http://169.254.169.254}"
INFERFLEET_ETC="${INFERFLEET_ETC:-/etc/inferfleet}"
INFERFLEET_STATE_DIR="${INFERFLEET_STATE_DIR:-/var/lib/inferfleet}"
POLL_ATTEMPTS="${INFERFLEET_POLL_ATTEMPTS:-60}"
POLL_SECONDS="${INFERFLEET_POLL_SECONDS:-5}"
# Where nodeadm records the array it created (and, finding it, does not create one again).
MDADM_CONFIG="${INFERFLEET_MDADM_CONFIG:-/.aws/mdadm.conf}"

# Where nodeadm leaves the kubelet's kubeconfig (the API server's address) and the cluster's CA.
KUBELET_KUBECONFIG="${INFERFLEET_KUBELET_KUBECONFIG:-/var/lib/kubelet/kubeconfig}"
CLUSTER_CA="${INFERFLEET_CLUSTER_CA:-/etc/kubernetes/pki/ca.crt}"

NODECONFIG="$INFERFLEET_ETC/nodeconfig.yaml"
PREPULL_PARAMETER_FILE="$INFERFLEET_ETC/prepull-parameter"
CLUSTER_NAME_FILE="$INFERFLEET_ETC/cluster-name"
WARM_POOL_FLAG="$INFERFLEET_ETC/warm-pool"
LAUNCH_HOOK_NAME_FILE="$INFERFLEET_ETC/lifecycle-hook-name"
GROUP_NAME_FILE="$INFERFLEET_ETC/autoscaling-group-name"
INSTANCE_STORE_MOUNT_FILE="$INFERFLEET_ETC/instance-store-mount"
JOINED_MARKER="$INFERFLEET_STATE_DIR/joined"

log() {
    printf 'inferfleet-node-join: %s\n' "$*" >&2
}

# An IMDSv2 session token (the launch template requires IMDSv2).
imds_token() {
    curl -fsS --max-time 5 -X PUT "$IMDS_ENDPOINT/latest/api/token" \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' </dev/null
}

# imds_get TOKEN PATH: the metadata item at PATH (under latest/); curl's exit status on failure.
imds_get() {
    curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $1" "$IMDS_ENDPOINT/latest/$2" </dev/null
}

# Prints the target lifecycle state; "absent" when IMDS has no such item (curl -f exits 22 on an
# HTTP error), "" when IMDS could not be reached.
target_lifecycle_state() {
    local token state rc=0
    token="$(imds_token)" || {
        echo ""
        return 0
    }
    state="$(imds_get "$token" meta-data/autoscaling/target-lifecycle-state)" || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "$state"
    elif [ "$rc" -eq 22 ]; then
        echo "absent"
    else
        echo ""
    fi
}

# warm | join | skip | wait
action_for() {
    case "$1" in
        Warmed:Terminated) echo skip ;;
        Warmed:*) echo warm ;;
        InService) echo join ;;
        absent)
            if [ -e "$WARM_POOL_FLAG" ]; then echo wait; else echo join; fi
            ;;
        *) echo wait ;;
    esac
}

# An ECR image needs a registry token (the node role may read ECR); other registries are pulled
# anonymously. Prints the password, or nothing.
registry_password() {
    local host="${1%%/*}"
    if [[ "$host" =~ ^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com$ ]] && command -v aws >/dev/null; then
        aws ecr get-login-password --region "${BASH_REMATCH[2]}" </dev/null || true
    fi
}

# Prints the pre-pull list from the SSM parameter the user data names; nothing when there is none or it
# cannot be read (the kubelet then pulls the images when a pod needs them).
prepull_list() {
    [ -s "$PREPULL_PARAMETER_FILE" ] || return 0
    local parameter token region
    parameter="$(<"$PREPULL_PARAMETER_FILE")"
    if ! command -v aws >/dev/null || ! token="$(imds_token)" || ! region="$(imds_get "$token" meta-data/placement/region)"; then
        log "cannot read the pre-pull list $parameter (no aws CLI or no region)"
        return 0
    fi
    aws ssm get-parameter --region "$region" --name "$parameter" --query Parameter.Value --output text </dev/null ||
        log "cannot read the pre-pull list $parameter"
}

prepull_images() {
    local list image password
    list="$(prepull_list)"
    if [ -z "$list" ]; then
        log "no images to pre-pull"
        return 0
    fi
    systemctl start containerd.service </dev/null || log "could not start containerd"
    while IFS= read -r image || [ -n "$image" ]; do
        image="${image%%#*}"
        image="${image//[[:space:]]/}"
        [ -n "$image" ] || continue
        password="$(registry_password "$image")"
        local credentials=()
        [ -z "$password" ] || credentials=(--user "AWS:$password")
        if ctr -n k8s.io images pull "${credentials[@]}" "$image" </dev/null; then
            log "pre-pulled $image"
        else
            log "could not pre-pull $image; the kubelet pulls it when a pod needs it"
        fi
    done <<<"$list"
}

prepare_warm() {
    if [ -e "$JOINED_MARKER" ]; then
        # An instance returned to the warm pool on scale-in: keep its kubelet from coming back as a node.
        systemctl stop kubelet.service </dev/null || true
    fi
    prepull_images
}

nodeadm_init() {
    nodeadm init --config-source "file://$NODECONFIG" </dev/null
}

# True when the user data names the instance store's mount point and nothing is mounted there: a stop
# (or hibernation) wiped the array since nodeadm built it. The unit runs after the mount unit, so a
# mount still in progress at boot does not count as lost.
instance_store_lost() {
    [ -s "$INSTANCE_STORE_MOUNT_FILE" ] || return 1
    local mount_point
    mount_point="$(<"$INSTANCE_STORE_MOUNT_FILE")"
    ! mountpoint -q "$mount_point" </dev/null
}

# Marks this node schedulable again (see the top). Never fatal: a node left cordoned still serves what runs on
# it, and an operator can uncordon it; the reason is logged.
uncordon_self() {
    [ -s "$CLUSTER_NAME_FILE" ] || return 0
    local cluster token region name server api_token attempt=1
    cluster="$(<"$CLUSTER_NAME_FILE")"
    if ! command -v aws >/dev/null || ! token="$(imds_token)" || ! region="$(imds_get "$token" meta-data/placement/region)" ||
        ! name="$(imds_get "$token" meta-data/local-hostname)"; then
        log "cannot uncordon: no aws CLI, region or node name"
        return 0
    fi
    server="$(sed -n 's/^[[:space:]]*server:[[:space:]]*//p' "$KUBELET_KUBECONFIG" 2>/dev/null | head -n 1)"
    if [ -z "$server" ] || [ ! -s "$CLUSTER_CA" ]; then
        log "cannot uncordon $name: no API server in $KUBELET_KUBECONFIG or no CA at $CLUSTER_CA"
        return 0
    fi
    while :; do
        if api_token="$(aws eks get-token --region "$region" --cluster-name "$cluster" --query status.token --output text </dev/null)" &&
            curl -fsS --max-time 10 --cacert "$CLUSTER_CA" -X PATCH -H "Authorization: Bearer $api_token" \
                -H 'Content-Type: application/strategic-merge-patch+json' --data '{"spec":{"unschedulable":false}}' \
                "$server/api/v1/nodes/$name" </dev/null >/dev/null; then
            log "uncordoned $name"
            return 0
        fi
        if [ "$attempt" -ge "$POLL_ATTEMPTS" ]; then
            log "could not uncordon $name after $attempt attempts; kubectl uncordon $name makes it schedulable"
            return 0
        fi
        sleep "$POLL_SECONDS"
        attempt=$((attempt + 1))
    done
}

join_cluster() {
    if [ -e "$JOINED_MARKER" ]; then
        if instance_store_lost; then
            log "instance store not mounted (wiped by a stop); forgetting the old array and running nodeadm again"
            rm -f "$MDADM_CONFIG"
            nodeadm_init
        else
            log "already joined; starting kubelet"
            systemctl start kubelet.service </dev/null
        fi
        uncordon_self
        return 0
    fi
    nodeadm_init
    mkdir -p "$INFERFLEET_STATE_DIR"
    touch "$JOINED_MARKER"
    log "joined the cluster"
}

# Tells Auto Scaling that this instance is ready, by completing the group's launch lifecycle hook
# (named by the user data; a group without a warm pool has none, and nothing is done). Never fatal:
# the hook's default result, CONTINUE, applies anyway once its heartbeat timeout runs out, and a boot
# with no pending lifecycle action (a reboot in service) makes the call fail harmlessly.
complete_launch_hook() {
    if [ ! -s "$LAUNCH_HOOK_NAME_FILE" ] || [ ! -s "$GROUP_NAME_FILE" ]; then
        return 0
    fi
    local hook group token instance region
    hook="$(<"$LAUNCH_HOOK_NAME_FILE")"
    group="$(<"$GROUP_NAME_FILE")"
    if ! command -v aws >/dev/null; then
        log "no aws CLI: cannot complete lifecycle hook $hook; Auto Scaling continues after its timeout"
        return 0
    fi
    if ! token="$(imds_token)" || ! instance="$(imds_get "$token" meta-data/instance-id)" ||
        ! region="$(imds_get "$token" meta-data/placement/region)"; then
        log "no instance id or region from IMDS: cannot complete lifecycle hook $hook"
        return 0
    fi
    if aws autoscaling complete-lifecycle-action --region "$region" --lifecycle-action-result CONTINUE \
        --instance-id "$instance" --lifecycle-hook-name "$hook" --auto-scaling-group-name "$group" </dev/null; then
        log "completed lifecycle hook $hook of $group"
    else
        log "could not complete lifecycle hook $hook of $group; Auto Scaling continues after its timeout"
    fi
}

main() {
    local attempt=1 state action
    while :; do
        state="$(target_lifecycle_state)"
        action="$(action_for "$state")"
        case "$action" in
            warm)
                log "target lifecycle state $state: pre-pulling, not joining"
                prepare_warm
                complete_launch_hook
                return 0
                ;;
            join)
                log "target lifecycle state $state: joining"
                join_cluster
                complete_launch_hook
                return 0
                ;;
            skip)
                log "target lifecycle state $state: nothing to do"
                return 0
                ;;
        esac
        if [ "$attempt" -ge "$POLL_ATTEMPTS" ]; then
            log "target lifecycle state still '${state}' after $attempt attempts; giving up"
            return 1
        fi
        log "target lifecycle state '${state}': asking again in ${POLL_SECONDS}s"
        sleep "$POLL_SECONDS"
        attempt=$((attempt + 1))
    done
}

main "$@"
