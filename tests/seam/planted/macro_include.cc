// Planted seam bypass 5: an include through a macro.
#define WX_PLANTED_HEADER <thread>
#include WX_PLANTED_HEADER

int planted_macro_include() { return static_cast<int>(std::thread::hardware_concurrency()); }
