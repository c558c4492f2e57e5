// Planted seam bypass 2 (second library): Boost.Process pulls in Asio too.
#include <boost/process.hpp>

int planted_process() { return 0; }
