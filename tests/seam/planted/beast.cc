// Planted seam bypass 2: Boost.Beast is not Asio by name, but includes it.
#include <boost/beast/core.hpp>

int planted_beast() { return 0; }
