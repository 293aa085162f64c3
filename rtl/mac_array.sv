// R x C output-stationary MAC array for narrow-accumulator GEMM (docs/contract.md
// section 5). PE (i, j) holds output C[fold_i * R + i][fold_j * C + j] of the
// current fold; a fold of an M x N x K GEMM takes K feed cycles.
//
// Feeding: in each of K cycles with in_valid, a_col[i] = A[row i][k] and
// b_row[j] = B[k][col j] (k = 0, 1, ... K-1), unskewed; the array skews them
// (row i of A is delayed i cycles, column j of B j cycles), so PE (i, j) sees
// A[i][k] and B[k][j] in cycle k + i + j. Operand values come sign- or
// zero-extended to the port width; cfg_a_signed / cfg_b_signed say which.
//
// Tiles: a controller counts k and cuts it into tiles of cfg_tile steps
// (cfg_tile = 0, or > cfg_k, means one tile of K: docs/contract.md, reading
// R5); the tile flags travel with A through the same skew.
//
// fold_done is high for one cycle, R + C - 1 cycles after the last feed
// cycle, once PE (R-1, C-1) has taken its last step. Drain: while drain is
// high, every O moves one PE down per cycle and c_out[j] shows O of PE
// (R-1, j); R cycles drain a fold (c_out first shows row R-1, then R-2, ...).
// A fold therefore takes K + R + C - 2 cycles (feed, then fill until
// fold_done) plus R to drain: K + 2R + C - 2. That is R more than the cost
// model's output-stationary fold (sim/cost/dataflow.h: SCALE-Sim's K + R + C - 2,
// which overlaps the drain with the next fold); this array drains before it
// feeds the next fold.
//
// Statistics (docs/contract.md §5; readings 9 and 10), over every enabled
// PE, until rst or stats_clear:
//   cnt_products       accumulated products (M * N * K over a whole GEMM)
//   cnt_changed_steps  saturate/wrap steps whose narrowing changed acc + p
//   cnt_clamped_tiles  clamp_tile tile results the clamp changed
//   cnt_inner_events   the two above together (one of them is always 0)
//   cnt_outer_ovf      tile additions the Wo clamp changed
//   max_abs_tile_sum   the largest |exact tile sum|, whatever the mode
module mac_array #(
    parameter int R = 4,
    parameter int C = 4,
    parameter int A_BITS = 8,
    parameter int B_BITS = 8,
    parameter int PROD_BITS = A_BITS + B_BITS + 1,
    parameter int ACC_BITS = 32,
    parameter int EXACT_BITS = 48,
    parameter int OUT_BITS = 32,
    parameter int CNT_BITS = 64,
    parameter int BUG = 0  // TEST ONLY, passed to every PE (pe.sv)
) (
    input  logic                           clk,
    input  logic                           rst,  // synchronous: controller and statistics
    // configuration, held during a GEMM
    input  logic                           cfg_a_signed,
    input  logic                           cfg_b_signed,
    input  logic [1:0]                     cfg_mode,        // 0 exact, 1 clamp_tile, 2 saturate, 3 wrap
    input  logic                           cfg_full_range,
    input  logic [5:0]                     cfg_acc_bits,    // W
    input  logic [5:0]                     cfg_outer_bits,  // Wo
    input  logic [31:0]                    cfg_k,           // K >= 1
    input  logic [31:0]                    cfg_tile,        // t; 0 = K
    // fold: which PEs hold real outputs (the edges of M and N)
    input  logic [R-1:0]                   row_en,
    input  logic [C-1:0]                   col_en,
    // operands
    input  logic                           in_valid,
    input  logic [R*A_BITS-1:0]            a_col,  // row i at [i*A_BITS +: A_BITS]
    input  logic [C*B_BITS-1:0]            b_row,  // column j at [j*B_BITS +: B_BITS]
    output logic                           fold_done,
    // drain
    input  logic                           drain,
    output logic [C*OUT_BITS-1:0]          c_out,  // column j at [j*OUT_BITS +: OUT_BITS]
    // statistics
    input  logic                           stats_clear,
    output logic [CNT_BITS-1:0]            cnt_products,
    output logic [CNT_BITS-1:0]            cnt_changed_steps,
    output logic [CNT_BITS-1:0]            cnt_clamped_tiles,
    output logic [CNT_BITS-1:0]            cnt_inner_events,
    output logic [CNT_BITS-1:0]            cnt_outer_ovf,
    output logic [EXACT_BITS-1:0]          max_abs_tile_sum
);
  // ---------------------------------------------------------------- tile controller
  logic [31:0] k, kt, t_eff;
  logic        f_k_first, f_t_start, f_t_last, f_k_last;
  assign t_eff     = (cfg_tile == 32'd0 || cfg_tile > cfg_k) ? cfg_k : cfg_tile;
  assign f_k_first = (k == 32'd0);
  assign f_t_start = (kt == 32'd0);
  assign f_k_last  = (k == cfg_k - 32'd1);
  assign f_t_last  = (kt == t_eff - 32'd1) | f_k_last;
  always_ff @(posedge clk) begin
    if (rst) begin
      k  <= '0;
      kt <= '0;
    end else if (in_valid) begin
      k  <= f_k_last ? 32'd0 : k + 32'd1;
      kt <= f_t_last ? 32'd0 : kt + 32'd1;
    end
  end

  // fold_done: (in_valid & last k) delayed R + C - 1 cycles
  logic done_sr [R+C];
  assign done_sr[0] = in_valid & f_k_last;
  for (genvar d = 1; d < R + C; d++) begin : g_done
    always_ff @(posedge clk) done_sr[d] <= ~rst & done_sr[d-1];
  end
  assign fold_done = done_sr[R+C-1];

  // ---------------------------------------------------------------- skew
  // Row i of A (with the step flags) is delayed i cycles, column j of B j cycles.
  localparam int AF = A_BITS + 4;  // a, step, k_first, t_start, t_last
  logic [AF-1:0]     a_sk [R];
  logic [B_BITS-1:0] b_sk [C];
  for (genvar i = 0; i < R; i++) begin : g_askew
    logic [AF-1:0] sr [i+1];
    assign sr[0] = {a_col[i*A_BITS +: A_BITS], in_valid, f_k_first & in_valid, f_t_start & in_valid, f_t_last & in_valid};
    for (genvar d = 1; d <= i; d++) begin : g_d
      always_ff @(posedge clk) sr[d] <= sr[d-1];
    end
    assign a_sk[i] = sr[i];
  end
  for (genvar j = 0; j < C; j++) begin : g_bskew
    logic [B_BITS-1:0] sr [j+1];
    assign sr[0] = b_row[j*B_BITS +: B_BITS];
    for (genvar d = 1; d <= j; d++) begin : g_d
      always_ff @(posedge clk) sr[d] <= sr[d-1];
    end
    assign b_sk[j] = sr[j];
  end

  // ---------------------------------------------------------------- PE grid
  // Horizontal links [i][j] enter PE (i, j) from the left; vertical [i][j]
  // enter from the top. The last column's and last row's outgoing operand
  // links have no reader: they are the grid's edge. O drains downwards.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [A_BITS-1:0]   h_a   [R][C+1];
  logic [3:0]          h_f   [R][C+1];  // step, k_first, t_start, t_last
  logic [B_BITS-1:0]   v_b   [R+1][C];
  /* verilator lint_on UNUSEDSIGNAL */
  logic [OUT_BITS-1:0] v_o   [R+1][C];
  logic                e_mac [R][C], e_chg [R][C], e_tile [R][C], e_clp [R][C], e_ovf [R][C];
  logic [EXACT_BITS-1:0] e_mag [R][C];
  localparam int P_BITS = (EXACT_BITS > ACC_BITS) ? EXACT_BITS : ACC_BITS;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [P_BITS-1:0]     e_p   [R][C];  // tile results: observable in simulation, not used by the array
  /* verilator lint_on UNUSEDSIGNAL */

  for (genvar i = 0; i < R; i++) begin : g_row
    assign h_a[i][0] = a_sk[i][AF-1:4];
    assign h_f[i][0] = a_sk[i][3:0];
    for (genvar j = 0; j < C; j++) begin : g_col
      if (i == 0) begin : g_top
        assign v_b[0][j] = b_sk[j];
        assign v_o[0][j] = '0;
      end
      if (i == R - 1) begin : g_bottom
        assign c_out[j*OUT_BITS +: OUT_BITS] = v_o[R][j];
      end
      pe #(
          .A_BITS(A_BITS), .B_BITS(B_BITS), .PROD_BITS(PROD_BITS), .ACC_BITS(ACC_BITS),
          .EXACT_BITS(EXACT_BITS), .OUT_BITS(OUT_BITS), .BUG(BUG)
      ) u_pe (
          .clk,
          .cfg_a_signed, .cfg_b_signed, .cfg_mode, .cfg_full_range, .cfg_acc_bits, .cfg_outer_bits,
          .en(row_en[i] & col_en[j]),
          .a_in(h_a[i][j]), .b_in(v_b[i][j]),
          .step_in(h_f[i][j][3]), .k_first_in(h_f[i][j][2]), .t_start_in(h_f[i][j][1]), .t_last_in(h_f[i][j][0]),
          .a_out(h_a[i][j+1]), .b_out(v_b[i+1][j]),
          .step_out(h_f[i][j+1][3]), .k_first_out(h_f[i][j+1][2]), .t_start_out(h_f[i][j+1][1]),
          .t_last_out(h_f[i][j+1][0]),
          .drain, .o_in(v_o[i][j]), .o_out(v_o[i+1][j]),
          .ev_mac(e_mac[i][j]), .ev_changed_step(e_chg[i][j]), .ev_tile(e_tile[i][j]),
          .ev_clamped_tile(e_clp[i][j]), .ev_outer_ovf(e_ovf[i][j]), .tile_mag(e_mag[i][j]),
          .tile_p_out(e_p[i][j])
      );
    end
  end

  // ---------------------------------------------------------------- statistics
  localparam int NW = $clog2(R * C + 1);
  logic [NW-1:0]         n_mac, n_chg, n_clp, n_ovf;
  logic [EXACT_BITS-1:0] cyc_max;
  always_comb begin
    n_mac   = '0;
    n_chg   = '0;
    n_clp   = '0;
    n_ovf   = '0;
    cyc_max = '0;
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) begin
        n_mac = n_mac + NW'(e_mac[i][j]);
        n_chg = n_chg + NW'(e_chg[i][j]);
        n_clp = n_clp + NW'(e_clp[i][j]);
        n_ovf = n_ovf + NW'(e_ovf[i][j]);
        if (e_tile[i][j] && e_mag[i][j] > cyc_max) cyc_max = e_mag[i][j];
      end
  end
  always_ff @(posedge clk) begin
    if (rst | stats_clear) begin
      cnt_products      <= '0;
      cnt_changed_steps <= '0;
      cnt_clamped_tiles <= '0;
      cnt_inner_events  <= '0;
      cnt_outer_ovf     <= '0;
      max_abs_tile_sum  <= '0;
    end else begin
      cnt_products      <= cnt_products + CNT_BITS'(n_mac);
      cnt_changed_steps <= cnt_changed_steps + CNT_BITS'(n_chg);
      cnt_clamped_tiles <= cnt_clamped_tiles + CNT_BITS'(n_clp);
      cnt_inner_events  <= cnt_inner_events + CNT_BITS'(n_chg) + CNT_BITS'(n_clp);
      cnt_outer_ovf     <= cnt_outer_ovf + CNT_BITS'(n_ovf);
      if (cyc_max > max_abs_tile_sum) max_abs_tile_sum <= cyc_max;
    end
  end
endmodule
