// Reading a YAML configuration field by field, shared by scenario files
// (training/scenario.cpp) and NPU configurations (sim/config/npu_config.cpp):
// dotted paths, `--set key=value` overrides applied to the tree before it is
// read, errors "file:line: path: what" (or "file: --set key: what" for a
// value from the command line) thrown as the configuration's own error type,
// every key that was never read reported as unknown, duplicate keys refused
// (yaml-cpp itself keeps the first silently), numbers finite.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "models/common/errors.h"

namespace hdq::yaml_fields {

std::vector<std::string> split_path(const std::string& path);

// The most nodes a configuration document may have, counting a node once per
// path that reaches it (a few lines of YAML aliases can stand for billions).
inline constexpr std::size_t kMaxNodes = 100000;

// The first problem of the document's structure, or "" when there is none:
// a key given twice in one mapping ("file:line: path: duplicate key (first
// given on line N)"), a key that is not a plain scalar, more than kMaxNodes
// nodes.
std::string structure_problem(const YAML::Node& root, const std::string& file);

// Parses `text` (the content of `file`) as YAML and checks its structure;
// every problem is thrown as Error naming the file and the line.
template <typename Error>
YAML::Node load_document(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}:{}: not valid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  if (const std::string p = structure_problem(root, file); !p.empty()) throw Error(p);
  return root;
}

// Path in the file -> the key as written after --set (they differ where a
// command prefixes its keys, as hdqsim's --set npu.<key>).
using Overridden = std::map<std::string, std::string>;

// Applies "key=value" overrides (value in YAML syntax) to the tree; path_of
// maps a key as written to its path in the file. Problems are thrown as Error.
template <typename Error>
Overridden apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides,
                           const std::function<std::string(const std::string&)>& path_of = {});

template <typename Error>
class Reader {
 public:
  // `doc`: where the fields are documented, named in "unknown field" errors.
  Reader(YAML::Node root, std::string file, Overridden overridden, std::string doc)
      : root_(std::move(root)), file_(std::move(file)), overridden_(std::move(overridden)), doc_(std::move(doc)) {}

  // The node at a dotted path, or nothing when a key on the way is absent.
  std::optional<YAML::Node> find(const std::string& path) const {
    YAML::Node n = root_;
    for (const auto& k : split_path(path)) {
      if (!n.IsMap()) return std::nullopt;
      const YAML::Node child = n[k];
      if (!child) return std::nullopt;
      n.reset(child);
    }
    return n;
  }

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    if (overridden_.count(path)) throw Error(fmt::format("{}: --set {}: {}", file_, overridden_.at(path), what));
    const auto n = find(path);
    const int line = n ? n->Mark().line + 1 : 0;
    if (line > 0) throw Error(fmt::format("{}:{}: {}: {}", file_, line, path, what));
    throw Error(fmt::format("{}: {}: {}", file_, path, what));
  }

  // Converts the field when present (leaving `out` as it is otherwise). A
  // floating-point field must be finite (.inf and .nan are refused).
  template <typename T>
  bool read(const std::string& path, T& out) {
    used_.insert(path);
    const auto n = find(path);
    if (!n) return false;
    T v{};
    try {
      v = n->template as<T>();
    } catch (const YAML::Exception&) {
      fail(path, fmt::format("'{}' is not a valid {}", describe(*n), type_name<T>()));
    }
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(v)) fail(path, fmt::format("'{}' is not a finite number", describe(*n)));
    out = v;
    return true;
  }

  // An integer field in [lo, hi].
  template <typename T>
  bool read_in_range(const std::string& path, T& out, long long lo, long long hi) {
    const bool present = read(path, out);
    if (present && (static_cast<long long>(out) < lo || static_cast<long long>(out) > hi))
      fail(path, fmt::format("{} is outside the allowed range {}..{}", out, lo, hi));
    return present;
  }

  // The same for a field without a default: absent, it is an error.
  template <typename T>
  void need(const std::string& path, T& out) {
    if (!read(path, out)) missing(path);
  }
  template <typename T>
  void need_in_range(const std::string& path, T& out, long long lo, long long hi) {
    if (!read_in_range(path, out, lo, hi)) missing(path);
  }

  // A string field turned into an enum by `parse` (which names the allowed values).
  template <typename E, typename Parse>
  bool read_enum(const std::string& path, E& out, Parse parse) {
    std::string s;
    if (!read(path, s)) return false;
    try {
      out = parse(s, path);
    } catch (const ConfigError& e) {
      fail(path, e.what());
    }
    return true;
  }

  // Every key in the document must have been read (or be below a read key).
  void reject_unknown() const { walk(root_, ""); }

 private:
  static std::string describe(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    if (n.IsNull()) return "(empty)";
    return n.IsSequence() ? "a list" : "a mapping";
  }
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "boolean (true/false)";
    else if constexpr (std::is_integral_v<T>) return "integer";
    else if constexpr (std::is_floating_point_v<T>) return "number";
    else if constexpr (std::is_same_v<T, std::string>) return "string";
    else return "list of integers";
  }
  [[noreturn]] void missing(const std::string& path) const {
    throw Error(fmt::format("{}: {}: missing; this field has no default (see {})", file_, path, doc_));
  }
  void walk(const YAML::Node& n, const std::string& prefix) const {
    if (!n.IsMap()) return;
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      if (used_.count(path)) continue;
      if (!kv.second.IsMap()) {
        if (overridden_.count(path)) throw Error(fmt::format("{}: --set {}: unknown field", file_, overridden_.at(path)));
        throw Error(fmt::format("{}:{}: {}: unknown field (see {})", file_, kv.first.Mark().line + 1, path, doc_));
      }
      walk(kv.second, path);
    }
  }

  YAML::Node root_;
  std::string file_;
  Overridden overridden_;
  std::string doc_;
  std::set<std::string> used_;
};

// Sets `value` at the path keys[i..] below node, creating mappings on the way.
void set_path(YAML::Node node, const std::vector<std::string>& keys, std::size_t i, const YAML::Node& value);

template <typename Error>
Overridden apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides,
                           const std::function<std::string(const std::string&)>& path_of) {
  Overridden overridden;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(fmt::format("--set '{}': expected key=value", o));
    const std::string key = o.substr(0, eq);
    const std::string path = path_of ? path_of(key) : key;
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw Error(fmt::format("--set {}: value is not valid YAML: {}", key, e.msg));
    }
    set_path(root, split_path(path), 0, value);
    overridden[path] = key;
  }
  return overridden;
}

}  // namespace hdq::yaml_fields
