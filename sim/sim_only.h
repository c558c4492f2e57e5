// Included first by every header in sim/. Node code is compiled with
// WXSIM_NODE_CODE defined (CMake: wxsim_node_library), so any node file that
// includes a simulator header — directly or through another header — fails
// to compile. Node code reaches the simulator only through nodes/runtime/.
#pragma once

#ifdef WXSIM_NODE_CODE
#error "node code must not include sim/: use the Runtime seam (nodes/runtime/runtime.h)"
#endif
