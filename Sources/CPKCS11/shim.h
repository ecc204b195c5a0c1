#ifndef SIGILLO_CPKCS11_SHIM_H
#define SIGILLO_CPKCS11_SHIM_H
// PKCS#11 types and constants as p11-kit ships them, plus p11-kit's module loader.
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#endif
