#!/usr/bin/env bash
# The compose deployment brought up for real and driven end to end, on a machine with a Docker engine
# and no image registry:
#   1. release binaries built on the host (Debian 12 bookworm, so the image's glibc matches);
#   2. the base image debian:bookworm-slim made by debootstrap when absent (docker/base-image.sh);
#   3. the runtime image: docker/Dockerfile's runtime-base stage + the host's binaries
#      (docker/Dockerfile.prebuilt), and a simulator image on top of it;
#   4. compose.yaml (unchanged) + an override adding the project's upstream simulator as the provider;
#   5. checks — the containers locked down (read-only root, no capability, no-new-privileges, memory
#      and pids limits, non-root: `docker inspect` and from inside), Grafana refusing to start without
#      an admin password, chat through the published port, the maintainer's diagnosis seen through the
#      gateway, `adminctl models accept` taking effect, state kept across restart, down/up and SIGKILL
#      under load, the dashboard's metric names against the live /metrics, promtool, and the image.
#   Prometheus and Grafana images cannot be pulled without a registry: their lockdown is checked in
#   the `compose config` output, and Grafana's password check on a stand-in image;
#   6. compose.postgres.yaml on a PostgreSQL image made here (docker/Dockerfile.postgres): PostgreSQL
#      and the two gateway replicas and the maintainer healthy and locked down on it, chat through each
#      replica, a small RPM spent through both at once served exactly with no upstream 429, and the
#      state kept across down/up.
#
#   docker/e2e.sh            (run as root, or as a user allowed to use docker and sudo)
#   E2E_KEEP=1 docker/e2e.sh (leave the stack, images and work folder for a look afterwards)
#
# Prints PASS/FAIL lines and the total time; exits non-zero on the first failure.
set -euo pipefail

started=$(date +%s)
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/freerouter-target}"

project="freerouter-e2e-$$-$RANDOM"
image="freerouter:$project"
base_image="freerouter-runtime-base:$project"
sim_image="freerouter-simulator:$project"
pg_image="freerouter-postgres:$project"
work="$(mktemp -d "/tmp/$project.XXXX")"
client=(python3 "$repo/docker/e2e_client.py")
# The default profile must come up without it (only the monitoring profile's Grafana needs it).
unset GRAFANA_ADMIN_PASSWORD

step() { printf '\n== %s\n' "$*"; }
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; exit 1; }
elapsed() { echo $(($(date +%s) - started)); }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (is dockerd running, may this user use it?)"
if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
else
    fail "neither \`docker compose\` nor \`docker-compose\` is installed"
fi
# The lockdown checks read `compose config` output (YAML); docker-compose 1.29 brings PyYAML along,
# a machine with only `docker compose` v2 may lack it.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
fi
compose() { (cd "$work" && "${compose_cmd[@]}" -p "$project" -f compose.yaml -f compose.e2e.yaml "$@"); }
container() { compose ps -q "$1"; }
# The PostgreSQL variant: a project and folder (.env, freerouter.toml) of its own.
pg_files=(-f compose.yaml -f compose.postgres.yaml -f compose.e2e.yaml)
compose_pg() { (cd "$work/pg" && "${compose_cmd[@]}" -p "$project-pg" "${pg_files[@]}" "$@"); }
container_pg() { compose_pg ps -q "$1"; }
wait_healthy() { # CONTAINER SECONDS: its healthcheck says healthy within SECONDS
    local health=none
    for _ in $(seq "$2"); do
        health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}' "$1")
        [ "$health" = healthy ] && return 0
        sleep 1
    done
    echo "  $(docker inspect -f '{{.Name}}' "$1") is $health after $2s"
    return 1
}

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$work/pg/compose.e2e.yaml" ]; then
        echo "-- last logs of the PostgreSQL variant (failure) --"
        compose_pg logs --no-color --tail=40 2>&1 | sed 's/^/    /' || true
    elif [ "$rc" -ne 0 ] && [ -f "$work/compose.e2e.yaml" ]; then
        echo "-- last logs (failure) --"
        compose logs --no-color --tail=40 2>&1 | sed 's/^/    /' || true
    fi
    if [ -n "${E2E_KEEP:-}" ]; then
        echo "E2E_KEEP: left running; clean up with:"
        echo "  (cd $work && ${compose_cmd[*]} -p $project -f compose.yaml -f compose.e2e.yaml down -v)"
        echo "  (cd $work/pg && ${compose_cmd[*]} -p $project-pg ${pg_files[*]} down -v)"
        echo "  docker image rm $sim_image $image $base_image $pg_image; rm -rf $work"
    else
        compose down -v --remove-orphans >/dev/null 2>&1 || true
        if [ -f "$work/pg/compose.e2e.yaml" ]; then
            compose_pg down -v --remove-orphans >/dev/null 2>&1 || true
        fi
        if [ -f "$work/compose.grafana.yaml" ]; then
            (cd "$work" && "${compose_cmd[@]}" -p "$project-grafana" -f compose.yaml -f compose.grafana.yaml \
                down -v --remove-orphans >/dev/null 2>&1) || true
        fi
        docker image rm "$sim_image" "$image" "$base_image" "$pg_image" >/dev/null 2>&1 || true
        rm -rf "$work"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "ALL PASS in $(elapsed)s"
    else
        echo "FAILED after $(elapsed)s"
    fi
}
trap cleanup EXIT

# --- 1. binaries ---------------------------------------------------------------------------------
# (Two checkouts sharing one CARGO_TARGET_DIR overwrite each other's target/release/NAME: a checkout
# whose build is fresh does not copy its binary there again. Give each checkout its own folder.)
step "release binaries (host build)"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || fail "the host is ${PRETTY_NAME:-unknown}, not Debian 12 bookworm: \
binaries built here would not match the image's glibc (build with \`docker compose build\` instead)"
t=$(date +%s)
cargo build --release --locked --quiet -p freerouter-gateway -p freerouter-maintainer -p adminctl \
    -p freerouter-tests --bin freerouter-gateway --bin freerouter-maintainer --bin adminctl \
    --bin freerouter-simulator
pass "binaries built ($(($(date +%s) - t))s)"

# --- 2.-3. images --------------------------------------------------------------------------------
step "images"
t=$(date +%s)
"$repo/docker/base-image.sh" debian:bookworm-slim
# runtime-base needs nothing from the context: build it from an empty folder.
mkdir -p "$work/empty" "$work/bin" "$work/sim"
build() { # quiet unless it fails (the classic builder also warns that it is deprecated)
    docker build -f "$@" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "docker build -f $*"; }
}
build "$repo/docker/Dockerfile" --target runtime-base -t "$base_image" "$work/empty"
cp "$CARGO_TARGET_DIR"/release/{freerouter-gateway,freerouter-maintainer,adminctl} "$work/bin/"
build "$repo/docker/Dockerfile.prebuilt" --build-arg BASE="$base_image" -t "$image" "$work/bin"
cp "$CARGO_TARGET_DIR/release/freerouter-simulator" "$work/sim/"
build "$repo/docker/Dockerfile.prebuilt" --build-arg BASE="$image" -t "$sim_image" "$work/sim"
pass "images built ($(($(date +%s) - t))s): $image"

# --- acceptance 4: the image itself --------------------------------------------------------------
step "the image: non-root, no provider key, small"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
uid=$(docker run --rm --entrypoint id "$image" -u)
{ [ -n "$user" ] && [ "$uid" != 0 ]; } || fail "the image runs as root (User=${user:-none}, uid $uid)"
pass "runs as user $user (uid $uid)"
env_names=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$image" | cut -d= -f1)
if echo "$env_names" | grep -Eq '(_API_KEY|_TOKEN|_API_TOKEN|API_KEYS|ADMIN_TOKEN)$'; then
    fail "the image's environment names a secret: $(echo "$env_names" | tr '\n' ' ')"
fi
dotenv=$(docker run --rm --user 0 --entrypoint find "$image" / -xdev \( -name '.env' -o -name 'freerouter.toml' \) -print)
[ -z "$dotenv" ] || fail "the image holds config/secrets files: $dotenv"
pass "no provider key in the image (env: $(echo "$env_names" | tr '\n' ' '); no .env or freerouter.toml)"
size=$(docker image inspect -f '{{.Size}}' "$image")
[ "$size" -lt 150000000 ] || fail "the image is $size bytes (limit 150 MB)"
pass "image size $((size / 1000000)) MB (< 150 MB)"

# --- 4. the stack --------------------------------------------------------------------------------
step "compose up (gateway, maintainer, simulator as the provider)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp "$repo/compose.yaml" "$work/compose.yaml"
cat >"$work/.env" <<EOF
# The e2e run's .env: the same file users write, pointing at the simulator.
FREEROUTER_IMAGE=$image
FREEROUTER_PORT=$port
SIM_API_KEY=sk-e2e-sim
TIGHT_API_KEY=sk-e2e-tight
TINY_API_KEY=sk-e2e-tiny
FREEROUTER__MAINTAINER__FIRST_RUN_DELAY_S=1
# The load of the SIGKILL check comes from one client: no per-client limit in its way.
FREEROUTER__LIMITS__PER_CLIENT_BURST=0
FREEROUTER__LOG__JSON=true
EOF
cat >"$work/freerouter.toml" <<'EOF'
# Providers on one simulator, each with its own key:
#   sim    the main one (the gateway knows its day limits, so quota gauges exist);
#   tight  the simulator allows its key 2 requests a day, the gateway does not know: a real 429
#          with a reset hours away cools the key (a persisted cooldown);
#   tiny   the gateway's own ledger allows 1 request a day: further ones are refused locally;
#   down   nothing listens there: requests fall back to the next route.
[providers.sim]
base_url = "http://simulator:9000/v1"
api_key_env = "SIM_API_KEY"
limits = { rpd = 100000, tpd = 100000000 }

[providers.tight]
base_url = "http://simulator:9000/v1"
api_key_env = "TIGHT_API_KEY"

[providers.tiny]
base_url = "http://simulator:9000/v1"
api_key_env = "TINY_API_KEY"
limits = { rpd = 1 }

[providers.down]
base_url = "http://simulator:9999/v1"
api_key_env = "TINY_API_KEY"

[[routes]]
provider = "sim"
model = "sim-model"
rank = 1

[[routes]]
provider = "tight"
model = "sim-model"
rank = 2

[[routes]]
provider = "tiny"
model = "sim-model"
rank = 3

[[routes]]
provider = "down"
model = "sim-model"
rank = 50

# Not served by the simulator: the maintainer's probe finds it gone and auto-maintenance removes it.
[[routes]]
provider = "sim"
model = "sim-gone"
rank = 4
EOF
cat >"$work/compose.e2e.yaml" <<EOF
# The e2e run's additions: the simulator as the provider, the config file, and the maintainer's
# metrics port published on an ephemeral loopback port (the image has no curl to fetch it inside).
services:
  simulator:
    image: $sim_image
    command: ["freerouter-simulator", "--listen", "0.0.0.0:9000",
              "--model", "sim-model", "--model", "sim-new:free", "--model", "sim-mystery",
              "--key-limits", "sk-e2e-tight=rpd:2"]
    stop_signal: SIGINT
    tmpfs:
      - /data
    healthcheck:
      test: ["CMD", "adminctl", "ping", "http://127.0.0.1:9000/v1/models"]
      interval: 2s
      timeout: 3s
      retries: 10
  gateway:
    environment:
      FREEROUTER_CONFIG: /etc/freerouter/freerouter.toml
    volumes:
      - ./freerouter.toml:/etc/freerouter/freerouter.toml:ro
    depends_on:
      simulator:
        condition: service_healthy
  maintainer:
    environment:
      FREEROUTER_CONFIG: /etc/freerouter/freerouter.toml
    volumes:
      - ./freerouter.toml:/etc/freerouter/freerouter.toml:ro
    ports:
      - "127.0.0.1::9091"
EOF
chmod 644 "$work/freerouter.toml"
base="http://127.0.0.1:$port"
t=$(date +%s)
compose up -d --no-build >/dev/null 2>&1 || { compose up -d --no-build; fail "compose up"; }
"${client[@]}" wait "$base/ready" 60 || fail "the gateway is not ready on $base"
pass "stack up, gateway ready on $base ($(($(date +%s) - t))s)"
maint_port=$(compose port maintainer 9091 | sed 's/.*://')
maint="http://127.0.0.1:$maint_port"
"${client[@]}" wait "$maint/health" 60 || fail "the maintainer is not healthy on $maint"
stats() { # memory and process count of the FreeRouter containers now (figures for the report)
    docker stats --no-stream --format '{{.Name}}: {{.MemUsage}}, {{.PIDs}} pids' \
        "$(container gateway)" "$(container maintainer)" | sed 's/^/    /'
}
echo "  at rest:"; stats

# --- issue 15 item 11: the containers are locked down ---------------------------------------------
step "the containers are locked down"
compose config >"$work/config.yaml" 2>"$work/config.err" || { cat "$work/config.err"; fail "compose config"; }
"${client[@]}" lockdown-config "$work/config.yaml" gateway maintainer || fail "compose.yaml (default profile)"
# Prometheus and Grafana cannot be pulled here: their configuration is checked, not their containers.
GRAFANA_ADMIN_PASSWORD=e2e-not-used compose --profile monitoring config >"$work/config-monitoring.yaml" \
    2>"$work/config.err" || { cat "$work/config.err"; fail "compose --profile monitoring config"; }
"${client[@]}" lockdown-config "$work/config-monitoring.yaml" prometheus grafana \
    || fail "compose.yaml (monitoring profile)"
pass "compose config: gateway, maintainer, prometheus, grafana locked down (the last two statically only)"
for svc in gateway maintainer; do
    docker inspect "$(container "$svc")" >"$work/$svc.inspect.json"
    "${client[@]}" locked-down "$work/$svc.inspect.json" "$work/config.yaml" "$svc" || fail "$svc container"
done
pass "docker inspect: ReadonlyRootfs, CapDrop ALL, no-new-privileges, Memory and PidsLimit as configured, non-root"
# From inside: what PID 1 (the program itself) holds, and where a write lands. Arguments: the folders
# that must be writable; / must not be.
cat >"$work/lockdown-probe.sh" <<'PROBE'
status() { sed -n "s/^$1:[[:space:]]*//p" /proc/1/status; }
uid=$(status Uid | cut -f1)
[ "$uid" != 0 ] || { echo "PID 1 runs as root"; exit 1; }
[ "$(status NoNewPrivs)" = 1 ] || { echo "PID 1 may gain privileges (NoNewPrivs $(status NoNewPrivs))"; exit 1; }
for set in CapEff CapPrm CapBnd; do
    [ "$(status $set)" = 0000000000000000 ] || { echo "PID 1 holds capabilities ($set $(status $set))"; exit 1; }
done
# (A write to / fails for a non-root user anyway: the mount itself must be read-only.)
root_mount=$(awk '$2 == "/" { print $4 }' /proc/mounts | tail -n 1)
case ",$root_mount," in *,ro,*) ;; *) echo "/ is mounted $root_mount, not read-only"; exit 1 ;; esac
for dir in "$@"; do
    (: >"$dir/.lockdown-probe") 2>/dev/null || { echo "$dir is not writable"; exit 1; }
    rm -f "$dir/.lockdown-probe"
done
echo "  $(cat /proc/1/comm) (uid $uid): no capability, NoNewPrivs, / read-only, writable: $*"
PROBE
chmod 644 "$work/lockdown-probe.sh"
for svc in gateway maintainer; do
    docker exec "$(container "$svc")" sh -c "$(cat "$work/lockdown-probe.sh")" probe /tmp /data \
        || fail "$svc from inside"
done
pass "inside: PID 1 non-root, no capability, NoNewPrivs; / read-only, /tmp and /data writable"
for svc in gateway maintainer; do # their healthcheck (adminctl ping) runs in the locked-down container
    for _ in $(seq 60); do
        health=$(docker inspect -f '{{.State.Health.Status}}' "$(container "$svc")")
        [ "$health" = healthy ] && break
        sleep 1
    done
    [ "$health" = healthy ] || fail "$svc is $health, not healthy"
done
pass "gateway and maintainer report healthy"

step "Grafana refuses to start without an admin password"
# compose.yaml's grafana service as it is (entrypoint, environment, lockdown), on the runtime base
# image instead of Grafana's (none here), with a stand-in for Grafana's /run.sh that says it started
# and probes the lockdown from inside.
cat >"$work/fake-run.sh" <<'FAKE'
#!/bin/sh
echo "stand-in grafana started: admin $GF_SECURITY_ADMIN_USER, a password of ${#GF_SECURITY_ADMIN_PASSWORD} characters"
exec sh /lockdown-probe.sh /tmp
FAKE
chmod 755 "$work/fake-run.sh"
cat >"$work/compose.grafana.yaml" <<EOF
services:
  grafana:
    image: $base_image
    volumes:
      - ./fake-run.sh:/run.sh:ro
      - ./lockdown-probe.sh:/lockdown-probe.sh:ro
EOF
grafana_compose() { (cd "$work" && "${compose_cmd[@]}" -p "$project-grafana" -f compose.yaml -f compose.grafana.yaml "$@"); }
grafana_run() { # the grafana service's entrypoint run once; its exit status, its output in grafana.out
    grafana_compose --profile monitoring run --rm --no-deps -T grafana >"$work/grafana.out" 2>&1
}
for password in "" admin change-me; do
    rc=0; GRAFANA_ADMIN_PASSWORD="$password" grafana_run || rc=$?
    sed 's/^/    /' "$work/grafana.out"
    [ "$rc" = 78 ] || fail "grafana with the password '$password' exited $rc, not 78 (refused)"
    grep -q 'set GRAFANA_ADMIN_PASSWORD in .env' "$work/grafana.out" || fail "no clear message for '$password'"
    if grep -q 'stand-in grafana started' "$work/grafana.out"; then fail "grafana started with '$password'"; fi
done
pass "grafana refuses an empty, 'admin' or 'change-me' password and says to set GRAFANA_ADMIN_PASSWORD in .env"
rc=0; GRAFANA_ADMIN_PASSWORD=e2e-a-real-password grafana_run || rc=$?
sed 's/^/    /' "$work/grafana.out"
{ [ "$rc" = 0 ] && grep -q 'a password of 19 characters' "$work/grafana.out"; } \
    || fail "grafana with GRAFANA_ADMIN_PASSWORD set did not start (exit $rc)"
pass "with GRAFANA_ADMIN_PASSWORD set the entrypoint starts Grafana (stand-in), locked down the same way"
grafana_compose down -v --remove-orphans >/dev/null 2>&1 || true

# --- acceptance 1: traffic, diagnosis, accept ----------------------------------------------------
step "chat through the published port"
"${client[@]}" chat "$base" auto --route sim/sim-model || fail "chat (model auto)"
"${client[@]}" chat "$base" auto --stream --route sim/sim-model || fail "streaming chat"
pass "chat and streaming chat through $base (served by sim/sim-model)"

step "a key cooled by the provider's headers; a local quota refusal; a fallback"
"${client[@]}" chat "$base" tight/sim-model --route tight/sim-model || fail "tight #1"
"${client[@]}" chat "$base" tight/sim-model --route tight/sim-model || fail "tight #2"
"${client[@]}" chat "$base" tight/sim-model --provider sim --trail-lacks "tight/" \
    || fail "the simulator said tight's day is spent (remaining 0): the gateway should cool the key, not send"
"${client[@]}" chat "$base" tiny/sim-model --route tiny/sim-model || fail "tiny #1"
"${client[@]}" chat "$base" tiny/sim-model --provider sim --trail-lacks "tiny/" \
    || fail "tiny's day quota (1) is spent: the gateway should not send"
"${client[@]}" chat "$base" down/sim-model --provider sim --trail-has "down/sim-model:" \
    || fail "a route whose upstream refuses connections should fall back to the next"
pass "tight's key cools until the provider's reset, tiny's spent quota is refused locally, down falls back"

step "the maintainer's diagnosis, seen through the gateway"
"${client[@]}" pending "$base" "sim/sim-new:free" 90 || fail "no add_route suggestion for sim/sim-new:free"
pass "pending add_route sim/sim-new:free visible at $base/v1/gateway/endpoint-diagnosis"

step "docker compose exec gateway adminctl models accept"
compose exec -T gateway adminctl models accept "sim/sim-new:free" || fail "adminctl models accept"
"${client[@]}" routed "$base" "sim/sim-new:free" 15 || fail "the accepted route is not routed to"
pass "accepted sim/sim-new:free and the gateway routes to it"

# --- acceptance 2: Prometheus config and the dashboard's names -----------------------------------
step "monitoring: promtool and the dashboard's metric names"
if ! command -v promtool >/dev/null 2>&1; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check config "$repo/docker/prometheus/prometheus.yml" >/dev/null || fail "promtool check config"
pass "promtool check config docker/prometheus/prometheus.yml"
curl_text() { python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }
# Wait for the maintainer's first diagnosis run to be counted, then check both processes' /metrics.
for _ in $(seq 60); do
    curl_text "$maint/metrics" >"$work/maintainer.metrics"
    grep -q '^freerouter_maintainer_runs_total' "$work/maintainer.metrics" && break
    sleep 1
done
curl_text "$base/metrics" >"$work/gateway.metrics"
for which in gateway maintainer; do
    promtool check metrics <"$work/$which.metrics" >/dev/null 2>&1 \
        || { promtool check metrics <"$work/$which.metrics" || true; fail "promtool check metrics ($which)"; }
done
pass "promtool check metrics: gateway and maintainer"
python3 "$repo/docker/check-dashboard.py" --promtool promtool \
    "$repo/docker/grafana/dashboards/freerouter.json" "$work/gateway.metrics" "$work/maintainer.metrics" \
    || fail "the dashboard queries names the processes do not export"

# --- acceptance 1: restart and down/up keep the state --------------------------------------------
# sim/sim-gone is declared in freerouter.toml, so every start (and every adminctl run) declares it
# again, and the maintainer removes it again: it is left out of the comparisons.
gone="sim/sim-gone"
copy_db() { # copy the volume's files out of the gateway container (running or stopped)
    rm -rf "$work/$1" && mkdir -p "$work/$1"
    docker cp "$(container gateway):/data/." "$work/$1/"
}
"${client[@]}" snapshot "$base" "$work/state0.json"
copy_db db0 && "${client[@]}" db "$work/db0" "$work/db0.json" || fail "database before restart"

step "docker compose restart"
t=$(date +%s)
compose restart >/dev/null 2>&1 || fail "compose restart"
"${client[@]}" wait "$base/ready" 60 || fail "not ready after restart"
pass "restarted and ready ($(($(date +%s) - t))s)"
"${client[@]}" snapshot "$base" "$work/state1.json"
"${client[@]}" same-state "$work/state0.json" "$work/state1.json" "$gone" || fail "catalog/quota lost in restart"
copy_db db1 && "${client[@]}" db "$work/db1" "$work/db1.json" || fail "database after restart"
"${client[@]}" same-db "$work/db0.json" "$work/db1.json" || fail "cooldowns/ledger lost in restart"
"${client[@]}" chat "$base" tight/sim-model --provider sim --trail-lacks "tight/" \
    || fail "the tight key's cooldown was forgotten in the restart"
"${client[@]}" chat "$base" tiny/sim-model --provider sim --trail-lacks "tiny/" \
    || fail "tiny's spent day quota was forgotten in the restart"
"${client[@]}" chat "$base" "sim/sim-new:free" --strict --route "sim/sim-new:free" || fail "accepted route lost"
pass "restart kept the catalog, the cooldown and the quota windows"

step "docker compose down / up (volume kept)"
"${client[@]}" snapshot "$base" "$work/state1.json"
t=$(date +%s)
compose down >/dev/null 2>&1 || fail "compose down"
compose up -d --no-build >/dev/null 2>&1 || fail "compose up"
"${client[@]}" wait "$base/ready" 60 || fail "not ready after down/up"
maint_port=$(compose port maintainer 9091 | sed 's/.*://'); maint="http://127.0.0.1:$maint_port"
pass "down and up again, ready ($(($(date +%s) - t))s)"
"${client[@]}" snapshot "$base" "$work/state2.json"
"${client[@]}" same-state "$work/state1.json" "$work/state2.json" "$gone" || fail "catalog/quota lost in down/up"
copy_db db2 && "${client[@]}" db "$work/db2" "$work/db2.json" || fail "database after down/up"
"${client[@]}" same-db "$work/db1.json" "$work/db2.json" || fail "cooldowns/ledger lost in down/up"
"${client[@]}" chat "$base" tight/sim-model --provider sim --trail-lacks "tight/" \
    || fail "the tight key's cooldown was forgotten in down/up"
"${client[@]}" chat "$base" "sim/sim-new:free" --strict --route "sim/sim-new:free" || fail "accepted route lost"
pass "down/up kept the catalog, the cooldown and the quota windows"

# --- acceptance 3: SIGKILL under load ------------------------------------------------------------
step "SIGKILL under load"
"${client[@]}" snapshot "$base" "$work/state3.json"
gateway_id=$(container gateway)
"${client[@]}" load "$base" 60 8 "$work/load.json" "$work/stop-load" &
load_pid=$!
sleep 3
echo "  under load (8 clients):"; stats
docker kill -s KILL "$gateway_id" >/dev/null || fail "docker kill"
sleep 2
touch "$work/stop-load"
wait "$load_pid" || fail "the load generator"
# `docker kill` counts as a manual stop (unless-stopped does not restart it); stopping again is a
# safeguard for engines that do, so the files are read as the kill left them.
docker stop -t 1 "$gateway_id" >/dev/null 2>&1 || true
copy_db db3 && "${client[@]}" db "$work/db3" "$work/db3.json" || fail "the database after SIGKILL is damaged"
pass "PRAGMA integrity_check ok on the files the SIGKILL left"
t0=$(python3 -c 'import time; print(time.time())')
docker start "$gateway_id" >/dev/null || fail "starting the killed gateway again"
"${client[@]}" wait "$base/ready" 30 || fail "not ready after SIGKILL"
"${client[@]}" chat "$base" auto --provider sim || fail "no chat right after the restart"
took=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
pass "serving again ${took}s after start (ready + a chat)"
"${client[@]}" snapshot "$base" "$work/state4.json"
"${client[@]}" same-state "$work/state3.json" "$work/state4.json" "$gone" || fail "catalog/quota lost after SIGKILL"
"${client[@]}" same-db "$work/db2.json" "$work/db3.json" || fail "cooldowns/ledger lost after SIGKILL"
"${client[@]}" chat "$base" tight/sim-model --provider sim --trail-lacks "tight/" \
    || fail "the tight key's cooldown was forgotten after SIGKILL"
"${client[@]}" chat "$base" tiny/sim-model --provider sim --trail-lacks "tiny/" \
    || fail "tiny's spent day quota was forgotten after SIGKILL"
pass "after SIGKILL: cooldowns and quota windows kept"

# --- issue 12: several gateways on one PostgreSQL ------------------------------------------------
step "the PostgreSQL variant: image and stack (compose.postgres.yaml)"
# The SQLite stack has been checked: its containers make room for this one.
compose down -v --remove-orphans >/dev/null 2>&1 || fail "compose down (SQLite stack)"
t=$(date +%s)
# No registry for the official postgres:15: the same Debian base and Debian's PostgreSQL 15.
build "$repo/docker/Dockerfile.postgres" --build-arg BASE_IMAGE=debian:bookworm-slim -t "$pg_image" "$repo/docker"
pass "PostgreSQL image built ($(($(date +%s) - t))s): $pg_image, $(($(docker image inspect -f '{{.Size}}' "$pg_image") / 1000000)) MB"
mkdir -p "$work/pg"
cp "$repo/compose.yaml" "$repo/compose.postgres.yaml" "$work/pg/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); port_1=$(free_port); port_2=$(free_port)
cat >"$work/pg/.env" <<EOF
# The PostgreSQL run's .env: the user's file plus the PostgreSQL variant's settings.
FREEROUTER_IMAGE=$image
FREEROUTER_PORT=$port_1
FREEROUTER_PORT_2=$port_2
POSTGRES_IMAGE=$pg_image
POSTGRES_PORT=$pg_port
POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
SIM_API_KEY=sk-e2e-sim
RPM_API_KEY=sk-e2e-rpm
FREEROUTER__LIMITS__PER_CLIENT_BURST=0
FREEROUTER__LOG__JSON=true
EOF
cat >"$work/pg/freerouter.toml" <<'EOF'
# sim  the main provider;
# rpm  a key the simulator allows 5 requests a minute, which the gateways know: two replicas
#      sharing its minute through PostgreSQL must together send exactly 5.
[providers.sim]
base_url = "http://simulator:9000/v1"
api_key_env = "SIM_API_KEY"
limits = { rpd = 100000, tpd = 100000000 }

[providers.rpm]
base_url = "http://simulator:9000/v1"
api_key_env = "RPM_API_KEY"
limits = { rpm = 5 }

[[routes]]
provider = "sim"
model = "sim-model"
rank = 1

# Asked for by name only (the last rank: "auto" never spends it).
[[routes]]
provider = "rpm"
model = "sim-rpm"
rank = 50
EOF
chmod 644 "$work/pg/freerouter.toml"
cat >"$work/pg/compose.e2e.yaml" <<EOF
services:
  simulator:
    image: $sim_image
    command: ["freerouter-simulator", "--listen", "0.0.0.0:9000", "--model", "sim-model",
              "--model", "sim-rpm", "--key-limits", "sk-e2e-rpm=rpm:5"]
    stop_signal: SIGINT
    tmpfs:
      - /data
    healthcheck:
      test: ["CMD", "adminctl", "ping", "http://127.0.0.1:9000/v1/models"]
      interval: 2s
      timeout: 3s
      retries: 10
  gateway:
    environment:
      FREEROUTER_CONFIG: /etc/freerouter/freerouter.toml
    volumes:
      - ./freerouter.toml:/etc/freerouter/freerouter.toml:ro
    depends_on:
      simulator:
        condition: service_healthy
  gateway-2:
    environment:
      FREEROUTER_CONFIG: /etc/freerouter/freerouter.toml
    volumes:
      - ./freerouter.toml:/etc/freerouter/freerouter.toml:ro
  maintainer:
    environment:
      FREEROUTER_CONFIG: /etc/freerouter/freerouter.toml
    volumes:
      - ./freerouter.toml:/etc/freerouter/freerouter.toml:ro
EOF
base_1="http://127.0.0.1:$port_1"; base_2="http://127.0.0.1:$port_2"
pg_services=(postgres gateway gateway-2 maintainer)
pg_up() { # up, then every service healthy and both replicas ready
    compose_pg up -d --no-build >/dev/null 2>&1 || { compose_pg up -d --no-build; fail "compose up (PostgreSQL variant)"; }
    for svc in "${pg_services[@]}"; do
        wait_healthy "$(container_pg "$svc")" 120 || fail "$svc is not healthy (PostgreSQL variant)"
    done
    "${client[@]}" wait "$base_1/ready" 30 || fail "gateway not ready on $base_1"
    "${client[@]}" wait "$base_2/ready" 30 || fail "gateway-2 not ready on $base_2"
}
t=$(date +%s)
pg_up
pass "PostgreSQL, gateway ($base_1), gateway-2 ($base_2) and the maintainer healthy ($(($(date +%s) - t))s)"
compose_pg exec -T postgres psql -U freerouter -d freerouter -Atc 'SELECT version()' | sed 's/^/    /'
for svc in gateway gateway-2 maintainer; do
    db=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$(container_pg "$svc")" \
        | sed -n 's/^FREEROUTER__STORAGE__DATABASE=//p')
    case "$db" in postgres://freerouter:*@postgres:5432/freerouter) ;; *) fail "$svc's database is '${db%%:*}…', not the PostgreSQL service" ;; esac
done
pass "gateway, gateway-2 and maintainer point at postgres://freerouter:…@postgres:5432/freerouter"

step "the PostgreSQL variant is locked down"
compose_pg config >"$work/pg/config.yaml" 2>"$work/config.err" || { cat "$work/config.err"; fail "compose config (PostgreSQL variant)"; }
"${client[@]}" lockdown-config "$work/pg/config.yaml" "${pg_services[@]}" || fail "compose.postgres.yaml"
for svc in "${pg_services[@]}"; do
    docker inspect "$(container_pg "$svc")" >"$work/pg/$svc.inspect.json"
    "${client[@]}" locked-down "$work/pg/$svc.inspect.json" "$work/pg/config.yaml" "$svc" || fail "$svc container"
done
docker exec "$(container_pg postgres)" sh -c "$(cat "$work/lockdown-probe.sh")" probe /tmp /run/postgresql \
    /var/lib/postgresql/data || fail "postgres from inside"
docker exec "$(container_pg gateway-2)" sh -c "$(cat "$work/lockdown-probe.sh")" probe /tmp /data \
    || fail "gateway-2 from inside"
pass "postgres and gateway-2 as locked down as the rest (compose config, docker inspect, from inside)"

step "chat through each replica"
"${client[@]}" chat "$base_1" sim/sim-model --route sim/sim-model || fail "chat through gateway"
"${client[@]}" chat "$base_2" sim/sim-model --route sim/sim-model || fail "chat through gateway-2"
"${client[@]}" chat "$base_2" sim/sim-model --stream --route sim/sim-model || fail "streaming chat through gateway-2"
pass "both replicas answer from the shared catalog"

step "one key's minute spent through both replicas at once"
"${client[@]}" rpm "$base_1,$base_2" rpm/sim-rpm 5 16 4 || fail "the replicas overspent or underspent rpm's key"
pass "16 requests through both replicas: exactly the key's 5 a minute served, no 429 from the provider"

step "docker compose down / up (PostgreSQL's volume kept)"
psql_pg() { compose_pg exec -T postgres psql -U freerouter -d freerouter -Atc "$1"; }
ledger_pg() { # settled requests per key, as KEY|N lines
    psql_pg "SELECT provider || '/' || key_id, sum(requests) FROM quota_ledger WHERE settled = 1 GROUP BY 1 ORDER BY 1" >"$1"
}
"${client[@]}" snapshot "$base_1" "$work/pg/state0.json"
ledger_pg "$work/pg/ledger0.txt"
t=$(date +%s)
compose_pg down >/dev/null 2>&1 || fail "compose down (PostgreSQL variant)"
docker volume inspect "$project-pg_postgres-data" >/dev/null 2>&1 || fail "down removed PostgreSQL's volume"
pg_up
pass "down and up again, all healthy ($(($(date +%s) - t))s)"
# The replicas' live leases settled at shutdown: the ledger now holds exactly what was served.
ledger_pg "$work/pg/ledger1.txt"
"${client[@]}" same-ledger "$work/pg/ledger0.txt" "$work/pg/ledger1.txt" || fail "the ledger did not survive down/up"
rpm_settled=$(awk -F'|' '$1 ~ /^rpm\// { print $2 }' "$work/pg/ledger1.txt")
[ "$rpm_settled" = 5 ] || fail "the rpm key's ledger holds ${rpm_settled:-no} settled requests, not the 5 served"
"${client[@]}" snapshot "$base_2" "$work/pg/state1.json"
"${client[@]}" same-state "$work/pg/state0.json" "$work/pg/state1.json" --catalog-only || fail "catalog lost in down/up"
"${client[@]}" chat "$base_1" sim/sim-model --route sim/sim-model || fail "chat through gateway after down/up"
"${client[@]}" chat "$base_2" sim/sim-model --route sim/sim-model || fail "chat through gateway-2 after down/up"
pass "down/up kept the catalog (read back through the other replica) and the quota ledger (rpm: 5 settled)"
