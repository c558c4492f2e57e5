// Planted seam bypass 8: clock(), declared through the seam's own header like
// time() (nodes/runtime/runtime.h -> <memory> -> ... -> <time.h>).
#include "nodes/runtime/runtime.h"

long planted_clock_call() { return static_cast<long>(clock()); }
