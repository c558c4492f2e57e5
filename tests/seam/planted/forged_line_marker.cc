// Planted seam bypass: a GNU line marker makes what follows look like part
// of libstdc++'s <string>, so <thread> seems to be included by a system header.
# 1 "/usr/include/c++/12/string" 1 3
#include <thread>
# 6 "forged_line_marker.cc" 2

int planted_forged_line_marker() { return static_cast<int>(std::thread::hardware_concurrency()); }
