// Design-space sweeps: the cartesian product of --set value lists (x seeds),
// one training run per point, each point's result stored as its own file so a
// sweep resumes where it stopped and shards of it can run on different
// machines and be merged. The summary (CSV, JSON) depends only on the point
// results, never on which process or shard produced them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "training/grid.h"

namespace hdq {

struct SweepAxis {
  std::string key;                  // dotted scenario path, as in --set
  std::vector<std::string> values;  // YAML scalars
  bool operator==(const SweepAxis&) const = default;
};

struct SweepSpec {
  std::string scenario;       // scenario file
  std::string scenario_hash;  // scenario_hash() of the file and the fixed overrides: an edited file is another sweep
  std::string engine = "functional";
  std::vector<SweepAxis> axes;
  int seeds = 1;                       // seeds 1..seeds of each grid point (seed=... overrides the scenario)
  std::vector<std::string> overrides;  // fixed --set key=value applied to every point

  nlohmann::json to_json() const;
  static SweepSpec from_json(const nlohmann::json& j);
  bool operator==(const SweepSpec&) const = default;
};

// "--set key=v1,v2,v3" -> axis; "key=v" (one value) -> a fixed override.
// Zipped axis: "--set k1+k2=a1+a2,b1+b2" sets k1 and k2 together (points
// k1=a1 k2=a2, then k1=b1 k2=b2), e.g. operand and accumulator bit pairs.
// A key given twice (as axes, fixed values, zipped keys or any mix) and `seed`
// (the sweep sets it per point: --seeds) are refused, naming the key.
void add_sweep_setting(SweepSpec& spec, const std::string& key_equals_values);

struct SweepPoint {
  int index = 0;                                // position in the enumeration (axes in order, seed last)
  std::vector<std::pair<std::string, std::string>> settings;  // axis key -> value
  int seed = 1;
  std::vector<std::string> overrides() const;  // spec.overrides + settings + seed, as key=value
  std::string id() const;                      // "p0007"
};

// A point's setting as scenario keys: a zipped "k1+k2" = "a1+a2" gives
// k1=a1 and k2=a2 (ConfigError when the part counts differ); a plain key itself.
std::vector<std::pair<std::string, std::string>> expand_setting(const std::string& key, const std::string& value);

std::vector<SweepPoint> enumerate_points(const SweepSpec& spec);

// "I/N" with 0 <= I < N: the points whose index % N == I.
struct Shard {
  int index = 0, count = 1;
  static Shard parse(const std::string& s);
  bool owns(const SweepPoint& p) const { return p.index % count == index; }
};

// The folder of a sweep (ResultFolder): DIR/sweep.json (the spec, its
// identity), DIR/points/<id>.json; locked while the object lives.
ResultFolder open_sweep_dir(const std::filesystem::path& dir, const SweepSpec& spec);

// Reads the spec and every finished point of a sweep folder.
struct SweepResults {
  SweepSpec spec;
  std::map<int, nlohmann::json> points;  // by index
};
SweepResults read_sweep_dir(const std::filesystem::path& dir);

// Summary tables in point order; identical bytes for identical point results.
std::string sweep_csv(const SweepResults& r);
nlohmann::json sweep_json(const SweepResults& r);

}  // namespace hdq
