// Planted seam bypass 3 (no forbidden include): libstdc++'s <memory> pulls in
// <pthread.h> through gthr (shared_ptr's atomics), so pthread_create is
// declared without the node file including anything forbidden. Only the
// compiled object shows the call.
#include <memory>

namespace {
void* body(void*) { return nullptr; }
}  // namespace

int planted_pthread_via_memory() {
  pthread_t t;
  if (::pthread_create(&t, nullptr, body, nullptr) != 0) return -1;
  return ::pthread_join(t, nullptr);
}
