// Planted seam bypass 6: libc's generator, as std::rand() and ::rand(). <cstdlib>
// itself is allowed (std::abs, strtoull); the call is judged in the object.
#include <cstdlib>

int planted_rand() { return std::rand() ^ ::rand(); }
