// Planted seam bypass 7: time(nullptr) in a file that includes only the seam.
// nodes/runtime/runtime.h -> <memory> -> gthr -> <pthread.h> -> <time.h>
// declares ::time, so no forbidden header is included anywhere in node code.
#include "nodes/runtime/runtime.h"

long planted_time_call() { return static_cast<long>(time(nullptr)); }
