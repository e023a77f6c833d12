#!/bin/bash
# The floor: what the role does on a cold apply, as bare commands. A key and
# self-signed certificate, a bcrypt hash and the three configuration files
# (floor_config.py, with the role's own renderers), the push and proxy
# registries (registry:2 on abstract unix sockets) and the front (caddy:2 on
# both ports), host network and restart policy as the role runs them; then
# wait until both registries answer 200 on their sockets and the front 401
# on both ports over verified TLS. bench/run.py times the whole script.
#
#   floor.sh DIR IMAGE FRONT_IMAGE PORT PUSH_PORT UPSTREAM_URL BCRYPT_COST PYTHON NAME_PREFIX
set -euo pipefail
dir=$1 image=$2 front_image=$3 port=$4 push_port=$5 upstream=$6 cost=$7 python=$8 prefix=$9
bench=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$dir/certs" "$dir/config" "$dir/data" "$dir/cache"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -keyout "$dir/certs/domain.key" -out "$dir/certs/domain.crt" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
read -r push_socket proxy_socket < <("$python" "$bench/floor_config.py" "$(dirname "$bench")/module_utils" \
    "$dir" "$port" "$push_port" "$upstream" "$cost")

common=(-d --network host --restart always)
docker run --name "${prefix}push" "${common[@]}" -v "$dir/data:/var/lib/registry:rw" \
    -v "$dir/config/push.yml:/etc/docker/registry/config.yml:ro" "$image" /etc/docker/registry/config.yml >/dev/null
docker run --name "${prefix}proxy" "${common[@]}" -v "$dir/cache:/var/lib/registry:rw" \
    -v "$dir/config/proxy.yml:/etc/docker/registry/config.yml:ro" "$image" /etc/docker/registry/config.yml >/dev/null
docker run --name "${prefix}front" "${common[@]}" -v "$dir/certs:/certs:ro" \
    -v "$dir/config/front.json:/etc/caddy/caddy.json:ro" --entrypoint caddy "$front_image" \
    run --config /etc/caddy/caddy.json >/dev/null

answers() {  # answers WANT CURL-ARGS...: poll until the answer is WANT
    local want=$1 code=
    shift
    for _ in $(seq 1 1500); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$@" || true)
        [ "$code" = "$want" ] && return 0
        sleep 0.02
    done
    echo "floor.sh: ${*: -1} did not answer $want (last: $code)" >&2
    return 1
}
answers 200 --abstract-unix-socket "$push_socket" http://localhost/v2/
answers 200 --abstract-unix-socket "$proxy_socket" http://localhost/v2/
for p in "$port" "$push_port"; do
    answers 401 --cacert "$dir/certs/domain.crt" "https://127.0.0.1:$p/v2/"
done
