#ifndef SIGILLO_CQRENCODE_SHIM_H
#define SIGILLO_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
