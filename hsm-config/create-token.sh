#!/bin/sh
# Creates the development SoftHSM token under hsm-config/tokens/ (idempotent).
# PINs are random, written to hsm-config/so.pin and hsm-config/user.pin (mode 600, ignored by git),
# and handed to the token through C_InitToken/C_InitPIN by `sigillo hsm init-token`, never on a command line.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sigillo=${SIGILLO:-$here/../.build/debug/sigillo}
label=${SIGILLO_TOKEN_LABEL:-sigillo}
module=${SIGILLO_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
mkdir -p "$here/tokens"
sed "s|@TOKENDIR@|$here/tokens|" "$here/softhsm2.conf.in" > "$here/softhsm2.conf"
export SOFTHSM2_CONF="$here/softhsm2.conf"
umask 077
[ -s "$here/so.pin" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$here/so.pin"
[ -s "$here/user.pin" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$here/user.pin"
if softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label: +$label *$"; then
    echo "token '$label' already exists in $here/tokens"
else
    "$sigillo" hsm init-token --module "$module" --label "$label" --so-pin-file "$here/so.pin" --pin-file "$here/user.pin"
    echo "token '$label' created in $here/tokens (PINs in $here/so.pin and $here/user.pin)"
fi
# The key-encryption key that wraps holder keys (holderKeys: wrapped), created at set-up (idempotent: checked if present).
SIGILLO_TOKEN="$label" SIGILLO_PKCS11_MODULE="$module" SIGILLO_PIN_FILE="$here/user.pin" "$sigillo" hsm create-kek
