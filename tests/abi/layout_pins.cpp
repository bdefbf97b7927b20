/* layout_pins.c compiled as C++: the same pins, checked by a C++ compiler. */
#include "layout_pins.c"
