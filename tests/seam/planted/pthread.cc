// Planted seam bypass 3: POSIX threads, the header and the call. The seam's
// own header has already pulled <pthread.h> in (through <memory>), so the
// compiler skips this include as already done: it is judged all the same.
#include "nodes/runtime/runtime.h"
#include <pthread.h>

namespace {
void* body(void*) { return nullptr; }
}  // namespace

int planted_pthread() {
  pthread_t t;
  if (pthread_create(&t, nullptr, body, nullptr) != 0) return -1;
  return pthread_join(t, nullptr);
}
