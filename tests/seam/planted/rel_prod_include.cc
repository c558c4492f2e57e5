// Planted seam bypass 1: the production runtime through a relative path.
// A node file in nodes/<dir>/ would write "../prod/asio_runtime.h"; from
// tests/seam/planted/ the same relative route into nodes/prod/ is longer.
// No textual rule for "nodes/prod/" matches it; the compiler opens the file.
#include "../../../nodes/prod/asio_runtime.h"

int planted_rel_prod_include() { return 0; }
