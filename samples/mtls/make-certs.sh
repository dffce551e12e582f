#!/usr/bin/env bash
# Makes a throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate
# (CN=mtls-client, DNS:mtls-client.local) in the folder given (default: ./certs). Demo use only.
set -euo pipefail
out="${1:-$(dirname "$0")/certs}"
mkdir -p "$out"
cd "$out"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=Tessera sample CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
issue() { # name subject san
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 30 -extfile "$1.ext" 2>/dev/null
  rm "$1.csr" "$1.ext"
}
issue server "/CN=localhost" "DNS:localhost,IP:127.0.0.1"
issue client "/CN=mtls-client" "DNS:mtls-client.local"
chmod 600 ./*.key
echo "certificates written to $out"
