// Included first by every header in nodes/prod/. Node code is compiled with
// WXSIM_NODE_CODE defined (CMake: wxsim_node_library), so any node file that
// includes a production-runtime header — directly, by a relative path or
// through another header — fails to compile. Node code reaches the world only
// through nodes/runtime/runtime.h; the production runtime is one implementation
// of it, chosen by the program that starts the node (cli/, tests, bench).
#pragma once

#ifdef WXSIM_NODE_CODE
#error "node code must not include nodes/prod/: use the Runtime seam (nodes/runtime/runtime.h)"
#endif
