// Runs a shell command for a test and returns its exit status and its
// output, stdout and stderr together (tests that drive the real programs:
// tests/test_rtl_cosim.cpp, tests/test_rtl_in_loop.cpp).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace hdq::test {

struct Proc {
  int status = -1;  // exit status; -1 when the command could not start or did not exit
  std::string output;
};

inline Proc run_command(const std::string& cmd) {
  Proc r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), int(buf.size()), p)) r.output += buf.data();
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace hdq::test
