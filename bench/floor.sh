#!/bin/bash
# The floor: what the role does on a cold apply, as bare commands. A key and
# self-signed certificate, an htpasswd line, the proxy and push containers
# (same image, host network, TLS, htpasswd auth, restart policy), then wait
# until both answer 401 over verified TLS. bench/run.py times the whole script.
#
#   floor.sh DIR IMAGE PROXY_PORT PUSH_PORT UPSTREAM_URL BCRYPT_COST PYTHON NAME_PREFIX
set -euo pipefail
dir=$1 image=$2 proxy_port=$3 push_port=$4 upstream=$5 cost=$6 python=$7 prefix=$8

mkdir -p "$dir/certs" "$dir/auth" "$dir/data"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -keyout "$dir/certs/domain.key" -out "$dir/certs/domain.crt" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1 2>/dev/null
"$python" -c 'import bcrypt, secrets, sys
pw = secrets.token_urlsafe(24).encode()
print("zuul:" + bcrypt.hashpw(pw, bcrypt.gensalt(int(sys.argv[1]))).decode())' "$cost" > "$dir/auth/htpasswd"

common=(-d --network host --restart always
    -v "$dir/data:/var/lib/registry" -v "$dir/certs:/certs:ro" -v "$dir/auth/htpasswd:/auth/htpasswd:ro"
    -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt -e REGISTRY_HTTP_TLS_KEY=/certs/domain.key
    -e REGISTRY_AUTH=htpasswd -e REGISTRY_AUTH_HTPASSWD_REALM=floor -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd)
docker run --name "${prefix}proxy" "${common[@]}" -e "REGISTRY_HTTP_ADDR=:$proxy_port" \
    -e "REGISTRY_PROXY_REMOTEURL=$upstream" "$image" >/dev/null
docker run --name "${prefix}push" "${common[@]}" -e "REGISTRY_HTTP_ADDR=:$push_port" "$image" >/dev/null

for port in "$proxy_port" "$push_port"; do
    for _ in $(seq 1 1500); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/certs/domain.crt" "https://127.0.0.1:$port/v2/" || true)
        [ "$code" = 401 ] && continue 2
        sleep 0.02
    done
    echo "floor.sh: https://127.0.0.1:$port/v2/ did not answer 401 (last: $code)" >&2
    exit 1
done
