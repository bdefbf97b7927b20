/* macro_usage.c compiled as C++. */
#include "macro_usage.c"
