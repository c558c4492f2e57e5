// Planted seam bypass 9: the CPU's time-stamp counter, a builtin: no header,
// no symbol, just an instruction in the object.
unsigned long long planted_rdtsc() { return __builtin_ia32_rdtsc(); }
