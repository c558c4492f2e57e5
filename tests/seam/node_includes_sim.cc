// Compiled by tests/seam/CMakeLists.txt as if it were node code: including
// a simulator header (here indirectly, through simulation.h) must fail.
#include "sim/simulation.h"

int main() { return 0; }
