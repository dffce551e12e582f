#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate for localhost/127.0.0.1 in the folder given (default:
# ./certs). The MCP client serves its Client ID Metadata Document with it over https; Tessera trusts the
# CA through "outbound": { "ca": "certs/ca.pem" }. Demo use only.
set -euo pipefail
out="${1:-$(dirname "$0")/certs}"
mkdir -p "$out"
cd "$out"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=Tessera MCP sample CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
key server
openssl req -new -key server.key -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 -extfile server.ext 2>/dev/null
rm server.csr server.ext
chmod 600 ./*.key
echo "certificates written to $out"
