#!/bin/sh
# Development certificates (idempotent), in certs/ or the folder given:
# - a TLS CA and a server certificate for 127.0.0.1 / localhost (both listeners);
# - an admin CA and a first operator client certificate (CN=operator) for the mutual-TLS admin listener.
# Production uses certificates from a real CA; these never leave the developer's machine (ignored by git).
set -eu
here=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$here"
cd "$here"
umask 077
if [ ! -s tls-ca.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/C=IT/O=Sigillo Development/CN=Sigillo Dev TLS CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout tls-ca-key.pem -out tls-ca.pem 2>/dev/null
fi
if [ ! -s server.pem ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/C=IT/O=Sigillo Development/CN=127.0.0.1" \
        -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' > server.ext
    openssl x509 -req -in server.csr -CA tls-ca.pem -CAkey tls-ca-key.pem -CAcreateserial -days 825 \
        -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr server.ext
fi
if [ ! -s admin-ca.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/C=IT/O=Sigillo Development/CN=Sigillo Dev Admin CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout admin-ca-key.pem -out admin-ca.pem 2>/dev/null
fi
if [ ! -s operator.pem ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/C=IT/O=Sigillo Development/CN=operator" \
        -keyout operator-key.pem -out operator.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' > operator.ext
    openssl x509 -req -in operator.csr -CA admin-ca.pem -CAkey admin-ca-key.pem -CAcreateserial -days 825 \
        -extfile operator.ext -out operator.pem 2>/dev/null
    rm -f operator.csr operator.ext
fi
chmod 644 tls-ca.pem server.pem admin-ca.pem operator.pem
echo "dev certificates in $here (clients trust tls-ca.pem; operators use operator.pem + operator-key.pem, issued by admin-ca.pem)"
