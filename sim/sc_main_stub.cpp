// libsystemc.so refers to sc_main (its own main() would call it), so every
// executable linking SystemC must define one. hdqsim and the tests have their
// own main() and start the kernel through sim/npu.h, so this is never called.
// SystemC declares it extern "C" (sysc/kernel/sc_externs.h).
extern "C" int sc_main(int, char*[]) { return 0; }
