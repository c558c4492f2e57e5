// Planted seam bypass: the simulator through a relative path.
#include "../../../sim/kernel.h"

int planted_rel_sim_include() { return 0; }
