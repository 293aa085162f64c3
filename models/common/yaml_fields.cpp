#include "models/common/yaml_fields.h"

#include <fmt/format.h>

#include <map>
#include <sstream>

namespace hdq::yaml_fields {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string k; std::getline(ss, k, '.');) keys.push_back(k);
  // Every path names at least one key: "" is the empty key (`--set npu.=1`
  // reached set_path with no key at all; found by fuzz_npu_config).
  if (keys.empty()) keys.emplace_back();
  return keys;
}

namespace {

struct StructureWalk {
  const std::string& file;
  std::size_t nodes = 0;
  std::string problem;

  // False once a problem is found.
  bool visit(const YAML::Node& n, const std::string& path) {
    if (++nodes > kMaxNodes) {
      problem = fmt::format("{}: more than {} YAML nodes (each use of an alias counts)", file, kMaxNodes);
      return false;
    }
    if (n.IsSequence()) {
      for (std::size_t i = 0; i < n.size(); ++i)
        if (!visit(n[i], fmt::format("{}[{}]", path, i))) return false;
      return true;
    }
    if (!n.IsMap()) return true;
    std::map<std::string, int> first_line;
    for (const auto& kv : n) {
      const int line = kv.first.Mark().line + 1;
      if (!kv.first.IsScalar()) {
        problem = fmt::format("{}:{}: {}: a key must be a plain scalar, not {}", file, line, path.empty() ? "(top)" : path,
                              kv.first.IsNull() ? "empty" : kv.first.IsMap() ? "a mapping" : "a list");
        return false;
      }
      const std::string& key = kv.first.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      const auto [it, fresh] = first_line.emplace(key, line);
      if (!fresh) {
        problem = fmt::format("{}:{}: {}: duplicate key (first given on line {})", file, line, child, it->second);
        return false;
      }
      if (!visit(kv.second, child)) return false;
    }
    return true;
  }
};

}  // namespace

std::string structure_problem(const YAML::Node& root, const std::string& file) {
  StructureWalk w{file, 0, {}};
  w.visit(root, "");
  return w.problem;
}

void set_path(YAML::Node node, const std::vector<std::string>& keys, std::size_t i, const YAML::Node& value) {
  if (i + 1 == keys.size()) {
    node[keys[i]] = value;
    return;
  }
  if (!node[keys[i]] || !node[keys[i]].IsMap()) node[keys[i]] = YAML::Node(YAML::NodeType::Map);
  set_path(node[keys[i]], keys, i + 1, value);
}

}  // namespace hdq::yaml_fields
