// Text formats: the UCI-HAR layout and generic CSV (formats in data/datasets.h).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <string_view>
#include <system_error>

#include "datasets/datasets.h"
#include "models/common/errors.h"
#include "models/common/input_file.h"

namespace hdq::datasets {
namespace fs = std::filesystem;
namespace {

// A token quoted in an error message, shortened so garbage lines stay readable.
std::string quoted(std::string_view tok) {
  return tok.size() <= 40 ? fmt::format("'{}'", tok) : fmt::format("'{}...'", tok.substr(0, 40));
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// The whole token as a finite f32, correctly rounded from the decimal text
// (std::from_chars: locale-independent). Accepts one leading '+', which
// from_chars does not. Rejects "nan", "inf" and out-of-range values.
std::optional<float> parse_f32(std::string_view tok) {
  if (tok.size() > 1 && tok[0] == '+' && tok[1] != '-') tok.remove_prefix(1);
  float v = 0.0f;
  const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc() || end != tok.data() + tok.size() || tok.empty() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// The whole token as a decimal integer (optional sign), if it is one.
std::optional<long long> parse_int(std::string_view tok) {
  if (tok.size() > 1 && tok[0] == '+' && tok[1] != '-') tok.remove_prefix(1);
  long long v = 0;
  const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc() || end != tok.data() + tok.size() || tok.empty()) return std::nullopt;
  return v;
}

// Reads a text file line by line (models/common/input_file.h: a regular file,
// bounded lines) and says "<path>:<line>: ..." in errors.
class LineReader {
 public:
  LineReader(const fs::path& path, std::string_view expected) : expected_(expected) {
    guard([&] { in_.emplace(path, "a data file"); });
  }
  // Next line without its '\n' (trailing '\r' is left to trim()); false at end.
  bool next(std::string& line) {
    bool more = false;
    guard([&] { more = in_->next(line); });
    return more;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(fmt::format("{}:{}: {}", in_->name(), in_->line(), what));
  }
  std::size_t line() const { return in_->line(); }

 private:
  // An InputError (not a regular file, too large, a line too long) as a DataError with the expected format.
  template <typename F>
  void guard(F&& f) {
    try {
      f();
    } catch (const InputError& e) {
      throw DataError(fmt::format("{} (expected {})", e.what(), expected_));
    }
  }
  std::string_view expected_;
  std::optional<InputLines> in_;
};

// A data set's feature values (or labels) may not outgrow the tensor limit.
void check_count(const LineReader& r, std::size_t values, std::string_view what) {
  if (values > kMaxTensorElements)
    r.fail(fmt::format("more than 2^28 = {} {} in the file, the limit of a tensor", kMaxTensorElements, what));
}

// ------------------------------------------------------------------ UCI-HAR

constexpr std::string_view kHarX = "UCI-HAR features: one sample per line, whitespace-separated decimal numbers";
constexpr std::string_view kHarY = "UCI-HAR labels: one integer class >= 1 per line";

// Rows of whitespace-separated floats; every row must have `dim` values
// (dim == 0: the first row sets it, `dim_source` names where dim came from).
std::vector<float> read_har_matrix(const fs::path& path, std::size_t& dim, std::string& dim_source) {
  LineReader r(path, kHarX);
  std::vector<float> x;
  std::string line;
  std::size_t rows = 0;
  while (r.next(line)) {
    std::string_view rest = line;
    std::size_t k = 0;
    while (true) {
      const auto b = rest.find_first_not_of(" \t\r");
      if (b == std::string_view::npos) break;
      rest.remove_prefix(b);
      const auto e = std::min(rest.find_first_of(" \t\r"), rest.size());
      const std::string_view tok = rest.substr(0, e);
      rest.remove_prefix(e);
      const auto v = parse_f32(tok);
      if (!v) r.fail(fmt::format("value {} is {}, not a finite number (expected {})", k + 1, quoted(tok), kHarX));
      x.push_back(*v);
      ++k;
    }
    if (k == 0) continue;  // blank line
    if (dim == 0) {
      dim = k;
      dim_source = fmt::format("{}:{}", path.string(), r.line());
    }
    if (k != dim) r.fail(fmt::format("ragged row: {} values, expected {} (as in {})", k, dim, dim_source));
    check_count(r, x.size(), "feature values");
    ++rows;
  }
  if (rows == 0) throw DataError(fmt::format("{}: no samples (expected {})", path.string(), kHarX));
  return x;
}

std::vector<std::int32_t> read_har_labels(const fs::path& path, int& max_label) {
  LineReader r(path, kHarY);
  std::vector<std::int32_t> y;
  std::string line;
  while (r.next(line)) {
    const std::string_view tok = trim(line);
    if (tok.empty()) continue;
    const auto v = parse_int(tok);
    if (!v) r.fail(fmt::format("{} is not an integer (expected {})", quoted(tok), kHarY));
    if (*v < 1 || *v > (1 << 20)) r.fail(fmt::format("class {} is outside 1..{} (expected {})", *v, 1 << 20, kHarY));
    y.push_back(static_cast<std::int32_t>(*v - 1));  // 1-based in the file, 0-based in a Dataset
    check_count(r, y.size(), "labels");
    max_label = std::max(max_label, static_cast<int>(*v));
  }
  return y;
}

}  // namespace

TrainTest load_uci_har(const fs::path& dir) {
  std::error_code ec;
  const bool nested = fs::exists(dir / "train" / "X_train.txt", ec);
  if (!nested && !fs::exists(dir / "X_train.txt", ec))
    throw DataError(fmt::format("{}: no UCI-HAR data: neither {} nor {} exists (expected train/X_train.txt, "
                                "train/y_train.txt, test/X_test.txt, test/y_test.txt, or the four files "
                                "directly in the directory)",
                                dir.string(), (dir / "train" / "X_train.txt").string(), (dir / "X_train.txt").string()));
  std::size_t dim = 0;
  std::string dim_source;
  int max_label = 0;
  auto split = [&](const std::string& s) {
    const fs::path base = nested ? dir / s : dir;
    const fs::path xp = base / ("X_" + s + ".txt"), yp = base / ("y_" + s + ".txt");
    Dataset ds;
    ds.name = "uci-har";
    ds.features = read_har_matrix(xp, dim, dim_source);
    ds.labels = read_har_labels(yp, max_label);
    const std::size_t n = ds.features.size() / dim;
    if (ds.labels.size() != n)
      throw DataError(fmt::format("{} has {} samples but {} has {} labels (expected one label per sample)",
                                  xp.string(), n, yp.string(), ds.labels.size()));
    ds.shape = {dim};
    return ds;
  };
  TrainTest tt{split("train"), split("test")};
  tt.train.num_classes = tt.test.num_classes = max_label;
  return tt;
}

// ---------------------------------------------------------------------- CSV
namespace {

constexpr std::string_view kCsv =
    "CSV rows 'feature_1,...,feature_D,label' with D >= 1 numeric features and an integer (>= 0) or "
    "class-name label, optionally after one header line";

struct CsvLabels {
  bool named = false;                      // valid once `decided`
  bool decided = false;
  std::map<std::string, int, std::less<>> ids;  // class name -> id (named labels)
  std::vector<std::string> names;          // id -> class name
  long long max_int = -1;                  // largest integer label
  std::size_t dim = 0;                     // 0 until the first file sets it
  std::string dim_source;
};

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> f;
  for (;;) {
    const auto comma = line.find(',');
    std::string_view field = trim(line.substr(0, comma));
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"') field = field.substr(1, field.size() - 2);
    f.push_back(field);
    if (comma == std::string_view::npos) return f;
    line.remove_prefix(comma + 1);
  }
}

Dataset read_csv(const fs::path& path, CsvLabels& L) {
  LineReader r(path, kCsv);
  Dataset ds;
  ds.name = path.stem().string();
  std::string line;
  bool first = true;
  std::size_t fields = 0;  // per row, fixed by the first row (header or data)
  while (r.next(line)) {
    if (trim(line).empty()) continue;
    const auto f = split_fields(line);
    if (first) {
      first = false;
      if (f.size() < 2) r.fail(fmt::format("{} field(s), need at least 2 (expected {})", f.size(), kCsv));
      fields = f.size();
      if (L.dim != 0 && fields - 1 != L.dim)
        r.fail(fmt::format("{} features per row, but {} has {}", fields - 1, L.dim_source, L.dim));
      if (L.dim == 0) {
        L.dim = fields - 1;
        L.dim_source = path.string();
      }
      const bool header = std::none_of(f.begin(), f.end(), [](std::string_view s) { return parse_f32(s).has_value(); });
      if (header) continue;
    }
    if (f.size() != fields) r.fail(fmt::format("ragged row: {} fields, expected {} like the first row", f.size(), fields));
    for (std::size_t k = 0; k + 1 < f.size(); ++k) {
      const auto v = parse_f32(f[k]);
      if (!v) r.fail(fmt::format("field {} is {}, not a finite number (expected {})", k + 1, quoted(f[k]), kCsv));
      ds.features.push_back(*v);
    }
    check_count(r, ds.features.size(), "feature values");
    const std::string_view lab = f.back();
    const auto as_int = parse_int(lab);
    if (!as_int && parse_f32(lab)) r.fail(fmt::format("label {} is a number but not an integer", quoted(lab)));
    if (!L.decided) {
      L.named = !as_int;
      L.decided = true;
    }
    if (L.named != !as_int)
      r.fail(fmt::format("label {} is {}, but earlier labels are {} (labels must be all integers or all class names)",
                         quoted(lab), as_int ? "an integer" : "a class name", L.named ? "class names" : "integers"));
    if (as_int) {
      if (*as_int < 0 || *as_int >= (1 << 20))
        r.fail(fmt::format("integer label {} is outside 0..{}", *as_int, (1 << 20) - 1));
      L.max_int = std::max(L.max_int, *as_int);
      ds.labels.push_back(static_cast<std::int32_t>(*as_int));
    } else {
      if (lab.empty()) r.fail("empty label");
      auto it = L.ids.find(lab);
      if (it == L.ids.end()) {
        it = L.ids.emplace(std::string(lab), static_cast<int>(L.names.size())).first;
        L.names.emplace_back(lab);
      }
      ds.labels.push_back(it->second);
    }
  }
  if (ds.labels.empty()) throw DataError(fmt::format("{}: no data rows (expected {})", path.string(), kCsv));
  ds.shape = {L.dim};
  return ds;
}

void finish(Dataset& ds, const CsvLabels& L) {
  ds.num_classes = L.named ? static_cast<int>(L.names.size()) : static_cast<int>(L.max_int + 1);
  if (L.named) ds.class_names = L.names;
}

}  // namespace

Dataset load_csv(const fs::path& path) {
  CsvLabels L;
  Dataset ds = read_csv(path, L);
  finish(ds, L);
  return ds;
}

TrainTest load_csv_pair(const fs::path& train, const fs::path& test) {
  CsvLabels L;
  TrainTest tt;
  tt.train = read_csv(train, L);
  tt.test = read_csv(test, L);
  finish(tt.train, L);
  finish(tt.test, L);
  return tt;
}

}  // namespace hdq::datasets
