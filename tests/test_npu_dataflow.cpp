// The MAC array's dataflows (sim/cost/dataflow.h) against SCALE-Sim v2, and
// SCALE-Sim's topology and COMPUTE_REPORT formats (sim/report/topology.h).
//
// The expected cycles and utilizations below were not derived by hand: they
// are what SCALE-Sim v2 itself printed (scalesim-project/scale-sim-v2 at
// commit 22f88b1, `scalesim(config, topology, input_type_gemm=True)`, SRAMs of
// 64 MiB and interface bandwidth 1000 so that Stall Cycles = 0, Total Cycles
// therefore = compute cycles) for the topologies written out in each test.
// docs/npu.md ("Dataflows") says how to rerun that comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/common/errors.h"
#include "sim/cost/dataflow.h"
#include "sim/report/topology.h"

namespace hdq::npu {
namespace {

struct Reference {
  std::uint64_t m, n, k;
  std::uint64_t cycles;
  double overall, mapping, compute;  // percent, as SCALE-Sim prints them
};

std::string fmt_shape(Dataflow d, const Reference& r) {
  return std::string(short_name(d)) + " " + std::to_string(r.m) + "x" + std::to_string(r.n) + "x" + std::to_string(r.k);
}

void expect_matches(Dataflow d, int rows, int cols, const std::vector<Reference>& refs) {
  for (const Reference& r : refs) {
    const std::string what = fmt_shape(d, r);
    EXPECT_EQ(compute_cycles(d, r.m, r.n, r.k, rows, cols), r.cycles) << what;
    const Utilization u = utilization(d, r.m, r.n, r.k, rows, cols);
    // SCALE-Sim prints 16 significant digits; the sums over folds may differ
    // from ours in the last few, so 1e-9 relative.
    EXPECT_NEAR(100 * u.overall, r.overall, 1e-9 * r.overall) << what;
    EXPECT_NEAR(100 * u.mapping_efficiency, r.mapping, 1e-9 * r.mapping) << what;
    EXPECT_NEAR(100 * u.compute, r.compute, 1e-9 * r.compute) << what;
  }
}

// The default scenario's training-step GEMMs (MLP 784-256-256-10, batch 128 +
// 128 replayed, `paper` preset: no Hadamard padding) as M, N, K: forward
// B x O x I, dX B x I x O (layers > 0), dW O x I x B; then odd shapes (K < R,
// N < C, nothing a multiple of anything, a 1 x 1 x 1).
const std::vector<std::vector<std::uint64_t>> kShapes16 = {
    {256, 256, 784}, {256, 784, 256}, {256, 256, 256}, {256, 256, 256}, {256, 10, 256}, {256, 256, 10},
    {10, 256, 256},  {37, 23, 19},    {5, 3, 100},     {1, 1, 1},       {17, 33, 7},    {100, 5, 3}};

std::vector<Reference> with(const std::vector<std::vector<std::uint64_t>>& shapes,
                            const std::vector<std::vector<double>>& printed) {
  std::vector<Reference> v;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    v.push_back({shapes[i][0], shapes[i][1], shapes[i][2], std::uint64_t(printed[i][0]), printed[i][1], printed[i][2],
                 printed[i][3]});
  return v;
}

TEST(Dataflow, OutputStationaryEqualsScaleSimOnThe16x16Array) {
  // SCALE-Sim COMPUTE_REPORT, dataflow os, 16 x 16: Total Cycles, Overall Util %, Mapping Efficiency %, Compute Util %.
  expect_matches(Dataflow::output_stationary, 16, 16,
                 with(kShapes16, {{208383, 96.31495851389029, 100.0, 96.3144963144968},
                                  {224223, 89.51088871346829, 100.0, 89.51048951048895},
                                  {73215, 89.51171208085775, 100.0, 89.51048951048999},
                                  {73215, 89.51171208085775, 100.0, 89.51048951048999},
                                  {4575, 55.95628415300546, 62.5, 55.94405594405594},
                                  {10239, 25.002441644691864, 100.0, 25.0},
                                  {4575, 55.95628415300546, 62.5, 55.94405594405594},
                                  {293, 21.556367320819113, 55.403645833333336, 21.483046343537417},
                                  {129, 4.542151162790698, 5.859375, 4.507211538461538},
                                  {30, 0.013020833333333334, 0.390625, 0.012600806451612902},
                                  {221, 6.941105769230769, 36.5234375, 6.909839527027028},
                                  {230, 2.547554347826087, 27.901785714285715, 2.536525974025974}}));
}

TEST(Dataflow, WeightStationaryEqualsScaleSimOnThe16x16Array) {
  expect_matches(Dataflow::weight_stationary, 16, 16,
                 with(kShapes16, {{236767, 84.76856994429123, 100.0, 80.75709779179766},
                                  {236767, 84.76856994429123, 100.0, 80.75709779179766},
                                  {77311, 84.7693083778505, 100.0, 80.75709779179778},
                                  {77311, 84.7693083778505, 100.0, 80.75709779179778},
                                  {4831, 52.99109915131443, 62.5, 50.47318611987384},
                                  {4831, 52.99109915131443, 62.5, 50.47318611987384},
                                  {14335, 17.85838855946983, 100.0, 14.084507042253572},
                                  {331, 19.08161820241692, 42.67578125, 16.112284757653057},
                                  {356, 1.6458918539325842, 16.741071428571427, 1.268262987012987},
                                  {46, 0.008491847826086956, 0.390625, 0.006300403225806451},
                                  {188, 8.15949135638298, 30.078125, 6.555488782051282},
                                  {145, 4.040948275862069, 5.859375, 3.6393633540372674}}));
}

// A non-square array (8 rows, 4 columns), so that swapping R and C anywhere shows.
const std::vector<std::vector<std::uint64_t>> kShapes8x4 = {{13, 7, 29}, {3, 50, 2}, {64, 64, 64},
                                                            {9, 1, 33},  {1, 40, 17}, {31, 17, 5}};

TEST(Dataflow, BothEqualScaleSimOnAnEightByFourArray) {
  expect_matches(Dataflow::output_stationary, 8, 4,
                 with(kShapes8x4, {{155, 53.20564516129032, 71.09375, 52.864583333333336},
                                   {155, 6.048387096774194, 36.05769230769231, 6.009615384615385},
                                   {9471, 86.49561820293528, 100.0, 86.48648648648664},
                                   {85, 10.919117647058824, 14.0625, 10.792151162790697},
                                   {269, 7.899628252788104, 12.5, 7.87037037037037},
                                   {299, 27.539715719063544, 82.34375, 27.44791666666666}}));
  expect_matches(Dataflow::weight_stationary, 8, 4,
                 with(kShapes8x4, {{247, 33.38815789473684, 79.296875, 30.31939338235294},
                                   {272, 3.4466911764705883, 24.03846153846154, 3.0048076923076925},
                                   {10495, 78.05621724630777, 100.0, 75.29411764705867},
                                   {134, 6.9263059701492535, 20.625, 6.1875},
                                   {569, 3.734622144112478, 70.83333333333334, 3.2196969696969697},
                                   {244, 33.747438524590166, 53.125, 31.670673076923077}}));
}

TEST(Dataflow, FoldGeometryByHand) {
  // 37 x 23 x 19 on 16 x 16, os: ceil(37/16) = 3 row folds, ceil(23/16) = 2
  // column folds, 19 + 16 + 16 - 2 = 49 cycles each: 6 * 49 - 1 = 293.
  FoldGeometry g = fold_geometry(Dataflow::output_stationary, 37, 23, 19, 16, 16);
  EXPECT_EQ(g.row_folds, 3u);
  EXPECT_EQ(g.col_folds, 2u);
  EXPECT_EQ(g.cycles_per_fold, 49u);
  EXPECT_EQ(g.cycles(), 293u);
  // ws folds K: ceil(19/16) = 2 by ceil(23/16) = 2, 2*16 + 16 + 37 - 2 = 83 each: 4 * 83 - 1 = 331.
  g = fold_geometry(Dataflow::weight_stationary, 37, 23, 19, 16, 16);
  EXPECT_EQ(g.row_folds, 2u);
  EXPECT_EQ(g.col_folds, 2u);
  EXPECT_EQ(g.cycles_per_fold, 83u);
  EXPECT_EQ(g.cycles(), 331u);
  EXPECT_EQ(fold_geometry(Dataflow::output_stationary, 0, 5, 5, 16, 16).cycles(), 0u);  // no work
}

TEST(Dataflow, AutoTakesTheFasterAndOutputStationaryOnATie) {
  // dX of the last layer, 256 x 256 x 10: os 10239 cycles, ws 4831 (above).
  EXPECT_EQ(choose_dataflow("auto", 256, 256, 10, 16, 16), Dataflow::weight_stationary);
  // dW of the last layer, 10 x 256 x 256: os 4575, ws 14335.
  EXPECT_EQ(choose_dataflow("auto", 10, 256, 256, 16, 16), Dataflow::output_stationary);
  // A tie on a 4 x 4 array: M = 6, N = 4, K = 2 is 2 os folds of 2 + 6 = 8
  // and 1 ws fold of 8 + 4 + 6 - 2 = 16 cycles, 16 - 1 = 15 either way.
  EXPECT_EQ(compute_cycles(Dataflow::output_stationary, 6, 4, 2, 4, 4), 15u);
  EXPECT_EQ(compute_cycles(Dataflow::weight_stationary, 6, 4, 2, 4, 4), 15u);
  EXPECT_EQ(choose_dataflow("auto", 6, 4, 2, 4, 4), Dataflow::output_stationary);
  // A configured dataflow is taken as it is.
  EXPECT_EQ(choose_dataflow("weight_stationary", 10, 256, 256, 16, 16), Dataflow::weight_stationary);
  EXPECT_EQ(choose_dataflow("output_stationary", 256, 256, 10, 16, 16), Dataflow::output_stationary);
}

TEST(Dataflow, WeightStationaryKeepsPartialSumsBetweenFoldsOfK) {
  // 4 x 8 x 40 on 16 x 16, W = 8, Wo = 32: ceil(40/16) = 3 folds of K, so each
  // of the 4 x 8 outputs leaves (1 + 4) bytes twice and reads them twice:
  // 2 * 2 * 32 * 5 = 640 bytes. B (40 x 8, one byte per value here) once: 320;
  // A (4 rows of 40 bytes) once per column fold (1): 160; C: 4 * 8 * 4 = 128.
  const auto b_bytes = [](std::uint64_t j0, std::uint64_t j1) { return 40 * (j1 - j0); };
  const ArrayTraffic ws = array_traffic(Dataflow::weight_stationary, 4, 8, 40, 40, 16, 16, 8, 32, false, b_bytes);
  EXPECT_EQ(ws.partial_bytes, 640u);
  EXPECT_EQ(ws.b_bytes, 320u);
  EXPECT_EQ(ws.a_bytes, 160u);
  EXPECT_EQ(ws.c_bytes, 128u);
  // os: one row fold, so B once as well, and no partial sums leave the PEs.
  const ArrayTraffic os = array_traffic(Dataflow::output_stationary, 4, 8, 40, 40, 16, 16, 8, 32, false, b_bytes);
  EXPECT_EQ(os.partial_bytes, 0u);
  EXPECT_EQ(os.b_bytes, 320u);
  EXPECT_EQ(os.total(), 320u + 160u + 128u);
  // A K-chunk continuing C (accumulate) also reads C's int32 O once: 4 * 8 * 4 = 128 more, either dataflow.
  for (const Dataflow d : {Dataflow::output_stationary, Dataflow::weight_stationary}) {
    const ArrayTraffic cont = array_traffic(d, 4, 8, 40, 40, 16, 16, 8, 32, true, b_bytes);
    const ArrayTraffic once = array_traffic(d, 4, 8, 40, 40, 16, 16, 8, 32, false, b_bytes);
    EXPECT_EQ(cont.c_in_bytes, 128u);
    EXPECT_EQ(cont.total(), once.total() + 128u);
  }
}

TEST(Topology, ParsesScaleSimGemmFilesWithOrWithoutTheTrailingComma) {
  const auto layers = parse_topology("Layer name, M, N, K,\nfc1, 128, 64, 256,\n\nfc2,1,2,3\n", "t.csv");
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].name, "fc1");
  EXPECT_EQ(layers[0].m, 128u);
  EXPECT_EQ(layers[0].n, 64u);
  EXPECT_EQ(layers[0].k, 256u);
  EXPECT_EQ(layers[1].k, 3u);
}

std::string topology_error(const std::string& text) {
  try {
    parse_topology(text, "t.csv");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Topology, MalformedLinesNameFileLineAndField) {
  EXPECT_EQ(topology_error("h\nfc, 1, 2\n"), "t.csv:2: expected 'name, M, N, K', got 3 field(s)");
  EXPECT_EQ(topology_error("h\nfc, 1, 0, 3,\n"), "t.csv:2: N = '0' is not an integer in 1..2^31");
  EXPECT_EQ(topology_error("h\nfc, 1, 2, x,\n"), "t.csv:2: K = 'x' is not an integer in 1..2^31");
  EXPECT_EQ(topology_error("Layer name, M, N, K,\n"), "t.csv: no layer lines after the header");
}

TEST(Topology, ComputeReportHasScaleSimColumnsOneRowPerLayerInOrder) {
  const std::string csv = compute_report_csv({{"a", 37, 23, 19}, {"b", 1, 1, 1}}, Dataflow::output_stationary, 16, 16);
  EXPECT_EQ(csv,
            "LayerID, Layer Name, M, N, K, Dataflow, Folds, Compute Cycles, Overall Util %, Mapping Efficiency %, "
            "Compute Util %,\n"
            "0, a, 37, 23, 19, os, 6, 293, 21.5564, 55.4036, 21.483,\n"
            "1, b, 1, 1, 1, os, 1, 30, 0.0130208, 0.390625, 0.0126008,\n");
}

TEST(Topology, ArrayAndDataflowFlags) {
  int r = 0, c = 0;
  parse_array_size("8x4", "--array", r, c);
  EXPECT_EQ(r, 8);
  EXPECT_EQ(c, 4);
  EXPECT_THROW(parse_array_size("8", "--array", r, c), ConfigError);
  EXPECT_THROW(parse_array_size("0x4", "--array", r, c), ConfigError);
  EXPECT_EQ(parse_dataflow("ws", "--dataflow"), Dataflow::weight_stationary);
  EXPECT_THROW(parse_dataflow("rs", "--dataflow"), ConfigError);
}

}  // namespace
}  // namespace hdq::npu
