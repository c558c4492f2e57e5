// Planted seam bypass 4: an include split by a line continuation.
#inc\
lude <thread>

int planted_continued_include() { return static_cast<int>(std::thread::hardware_concurrency()); }
