// libsystemc.so refers to sc_main (the library's own main() calls it), so an
// executable linking it must define one. The property tests use only the
// sc_dt datatypes and GoogleTest's main, so this is never called. SystemC
// declares it extern "C" (sysc/kernel/sc_externs.h).
extern "C" int sc_main(int, char*[]) { return 0; }
