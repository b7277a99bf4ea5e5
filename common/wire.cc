// wire.h is header-only; this file keeps the frame layout's static checks in one TU.
#include "common/wire.h"
