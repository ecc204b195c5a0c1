#ifndef SIGILLO_CARGON2_SHIM_H
#define SIGILLO_CARGON2_SHIM_H
#include <argon2.h>
#endif
