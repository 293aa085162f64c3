// One entry of the command queue: what the host writes into DRAM, the
// command processor fetches, and a block receives in one b_transport.
//
//   offset  size  field
//   0       4     id       position in the queue from 0 (VCD, error reports)
//   4       1     unit     the block that executes it (Unit)
//   5       1     phase    accounting tag (Phase)
//   6       2     layer    accounting tag; also names tensors in error messages
//   8       4     opcode   the block's operation (its header lists them)
//   12      4     reserved 0
//   16      112   payload  the block's descriptor (its header defines it)
// Descriptors are plain structs copied byte for byte (little-endian host).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "sim/cost/ledger.h"

namespace hdq::npu {

inline constexpr std::size_t kCommandBytes = 128;
inline constexpr std::size_t kPayloadBytes = 112;

enum class Space : std::uint8_t { dram = 0, sram = 1 };

// A memory range a command reads or writes. The command processor starts a
// command only after every earlier command it conflicts with (one of the two
// writes an overlapping range) has finished; each block's descriptor lists
// its accesses (`accesses`), so a block can be asked without running it.
struct Access {
  Space space = Space::sram;
  bool write = false;
  std::uint64_t addr = 0, bytes = 0;
};
using Footprint = std::vector<Access>;

struct CommandHeader {
  std::uint32_t id = 0;
  Unit unit = Unit::dma;
  Phase phase = Phase::forward;
  std::uint16_t layer = 0;
  std::uint32_t opcode = 0;
  std::uint32_t reserved = 0;
};

struct Command {
  CommandHeader header;
  std::array<std::uint8_t, kPayloadBytes> payload{};

  template <typename D>
  static Command make(Unit unit, Phase phase, int layer, std::uint32_t opcode, const D& d) {
    static_assert(std::is_trivially_copyable_v<D> && sizeof(D) <= kPayloadBytes, "descriptor does not fit");
    Command c;
    c.header.unit = unit;
    c.header.phase = phase;
    c.header.layer = std::uint16_t(layer);
    c.header.opcode = opcode;
    std::memcpy(c.payload.data(), &d, sizeof(D));
    return c;
  }
  template <typename D>
  D as() const {
    static_assert(std::is_trivially_copyable_v<D> && sizeof(D) <= kPayloadBytes, "descriptor does not fit");
    D d;
    std::memcpy(&d, payload.data(), sizeof(D));
    return d;
  }
};
static_assert(sizeof(CommandHeader) == 16 && sizeof(Command) == kCommandBytes);

}  // namespace hdq::npu
