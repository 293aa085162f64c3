// Processing element of the output-stationary MAC array: one output C[i][j]
// of docs/contract.md §5 (hdqsim's models/accumulator/gemm_reference.cpp is
// the definition this RTL is checked against, bit for bit).
//
//   product  p = a * b               a, b signed or unsigned (cfg_*_signed)
//   tile     exact:      P = exact tile sum
//            clamp_tile: P = clamp(exact tile sum, range)
//            saturate:   acc = clamp(acc + p, range) per step, P = acc
//            wrap:       acc = (acc + p) mod 2^W into the full range, P = acc
//   outer    O = clamp(O + P, full Wo-bit range), once per tile, in tile order
//   range    symmetric [-(2^(W-1)-1), 2^(W-1)-1] or full [-2^(W-1), 2^(W-1)-1]
//
// Widths are parameters (the largest values the PE supports); mode, range,
// W <= ACC_BITS, Wo <= OUT_BITS and operand signedness are configuration
// inputs held constant during a GEMM. The vector testbench drives them at run
// time (one verilated model covers every case of a vector set); the area
// wrapper pe_synth.sv ties them to parameter values, so after constant
// propagation yosys synthesizes exactly one configuration. The arithmetic is
// this one module either way.
//
// Timing: operands and tile flags arrive together (the array skews them) and
// are registered to the right / bottom neighbour. A step with en & step_in
// multiplies, accumulates, and on the tile's last step adds the tile result to
// O (all in that cycle; registers update at the clock edge). The event
// outputs are combinational and valid in the cycle of the step.
module pe #(
    parameter int A_BITS = 8,   // operand a port width (values already sign/zero extended to it)
    parameter int B_BITS = 8,   // operand b port width
    // product width: A+B+1 holds unsigned x unsigned ((2^A-1)(2^B-1)); A+B
    // suffices when at least one operand is signed
    parameter int PROD_BITS = A_BITS + B_BITS + 1,
    parameter int ACC_BITS = 32,    // narrow register: the largest W (cfg_acc_bits <= ACC_BITS)
    // exact tile sum register: PROD_BITS + ceil(log2(longest tile)); used by
    // exact and clamp_tile, and for the headroom statistic in every mode
    parameter int EXACT_BITS = 48,
    parameter int OUT_BITS = 32,    // outer accumulator: the largest Wo (cfg_outer_bits <= OUT_BITS)
    // TEST ONLY, for the "broken RTL is caught" checks of the vector testbench.
    // 0: correct. 1: the saturate upper bound is one too low (2^(W-1) - 2).
    // 2: the saturate lower bound is one too high. 3: the outer (Wo) clamp's
    // upper bound is one too low.
    parameter int BUG = 0,
    // derived, do not override: width of the tile result output
    parameter int P_BITS = (EXACT_BITS > ACC_BITS) ? EXACT_BITS : ACC_BITS
) (
    input  logic                  clk,
    // configuration, held during a GEMM
    input  logic                  cfg_a_signed,
    input  logic                  cfg_b_signed,
    input  logic [1:0]            cfg_mode,        // 0 exact, 1 clamp_tile, 2 saturate, 3 wrap
    input  logic                  cfg_full_range,  // 1 full, 0 symmetric
    input  logic [5:0]            cfg_acc_bits,    // W, 2..ACC_BITS
    input  logic [5:0]            cfg_outer_bits,  // Wo, W..OUT_BITS
    input  logic                  en,              // this PE holds a real output of the fold
    // operands and step flags, from the left (a, flags) and the top (b)
    input  logic [A_BITS-1:0]     a_in,
    input  logic [B_BITS-1:0]     b_in,
    input  logic                  step_in,     // a contraction step k is here
    input  logic                  k_first_in,  // k == 0: O starts at 0
    input  logic                  t_start_in,  // first step of a tile: the tile sums start at 0
    input  logic                  t_last_in,   // last step of a tile: P goes into O
    output logic [A_BITS-1:0]     a_out,
    output logic [B_BITS-1:0]     b_out,
    output logic                  step_out,
    output logic                  k_first_out,
    output logic                  t_start_out,
    output logic                  t_last_out,
    // drain: O shifts one PE down per cycle (o_in from the PE above)
    input  logic                  drain,
    input  logic [OUT_BITS-1:0]   o_in,
    output logic [OUT_BITS-1:0]   o_out,
    // statistics events (docs/contract.md §5; readings R9, R10)
    output logic                  ev_mac,           // a product was accumulated
    output logic                  ev_changed_step,  // saturate/wrap changed acc + p
    output logic                  ev_tile,          // a tile result went into O
    output logic                  ev_clamped_tile,  // clamp_tile changed the tile sum
    output logic                  ev_outer_ovf,     // the Wo clamp changed O + P
    output logic [EXACT_BITS-1:0] tile_mag,         // |exact tile sum| (valid with ev_tile), whatever the mode
    output logic [P_BITS-1:0]     tile_p_out        // the tile result P (valid with ev_tile)
);
  localparam logic [1:0] M_EXACT = 2'd0, M_CLAMP = 2'd1, M_SAT = 2'd2, M_WRAP = 2'd3;
  localparam int MAX_AP = (ACC_BITS > PROD_BITS) ? ACC_BITS : PROD_BITS;
  localparam int LW0 = (MAX_AP > EXACT_BITS) ? MAX_AP : EXACT_BITS;
  localparam int LW = LW0 + 1;  // narrow sums, tile sums and their limits
  localparam int OW = ((LW > OUT_BITS) ? LW : OUT_BITS) + 1;  // outer sum

  // ---------------------------------------------------------------- registers
  logic signed [ACC_BITS-1:0]   acc;  // saturate / wrap register (W bits used)
  logic signed [EXACT_BITS-1:0] ex;   // exact tile sum
  logic signed [OUT_BITS-1:0]   o;    // outer accumulator (Wo bits used)

  // ---------------------------------------------------------------- product
  logic signed [A_BITS:0]    a_x;
  logic signed [B_BITS:0]    b_x;
  logic signed [PROD_BITS-1:0] prod;
  assign a_x  = {cfg_a_signed & a_in[A_BITS-1], a_in};
  assign b_x  = {cfg_b_signed & b_in[B_BITS-1], b_in};
  assign prod = PROD_BITS'(a_x) * PROD_BITS'(b_x);

  // ---------------------------------------------------------------- inner limits (W bits)
  logic signed [LW-1:0] hi, lo, sat_hi, sat_lo;
  assign hi     = (LW'(1) <<< (cfg_acc_bits - 6'd1)) - LW'(1);
  assign lo     = cfg_full_range ? -hi - LW'(1) : -hi;
  assign sat_hi = (BUG == 1) ? hi - LW'(1) : hi;
  assign sat_lo = (BUG == 2) ? lo + LW'(1) : lo;

  // ---------------------------------------------------------------- saturate / wrap step
  logic signed [LW-1:0] nsum, nsat, nwrap, nnext;
  logic [6:0]           wsh;  // LW - W: shift that sign-extends from bit W-1
  assign wsh   = 7'(LW) - {1'b0, cfg_acc_bits};
  assign nsum  = (t_start_in ? LW'(0) : LW'(acc)) + LW'(prod);
  assign nsat  = (nsum > sat_hi) ? sat_hi : (nsum < sat_lo) ? sat_lo : nsum;
  assign nwrap = (nsum <<< wsh) >>> wsh;
  assign nnext = (cfg_mode == M_SAT) ? nsat : nwrap;

  // ---------------------------------------------------------------- exact tile sum, clamp_tile
  logic signed [EXACT_BITS-1:0] esum;
  logic signed [LW-1:0]         esum_l, eclamp;
  assign esum   = (t_start_in ? EXACT_BITS'(0) : ex) + EXACT_BITS'(prod);
  assign esum_l = LW'(esum);
  assign eclamp = (esum_l > hi) ? hi : (esum_l < lo) ? lo : esum_l;

  // ---------------------------------------------------------------- tile result into the outer accumulator
  logic signed [LW-1:0] tile_p;
  always_comb begin
    unique case (cfg_mode)
      M_EXACT: tile_p = esum_l;
      M_CLAMP: tile_p = eclamp;
      default: tile_p = nnext;  // saturate, wrap
    endcase
  end

  logic signed [OW-1:0] osum, ohi, olo, onext;
  assign osum  = (k_first_in ? OW'(0) : OW'(o)) + OW'(tile_p);
  assign ohi   = (OW'(1) <<< (cfg_outer_bits - 6'd1)) - OW'(1) - ((BUG == 3) ? OW'(1) : OW'(0));
  assign olo   = -((OW'(1) <<< (cfg_outer_bits - 6'd1)));
  assign onext = (osum > ohi) ? ohi : (osum < olo) ? olo : osum;

  // ---------------------------------------------------------------- events
  logic mac, narrowing;
  assign mac             = en & step_in;
  assign narrowing       = (cfg_mode == M_SAT) | (cfg_mode == M_WRAP);
  assign ev_mac          = mac;
  assign ev_changed_step = mac & narrowing & (nnext != nsum);
  assign ev_tile         = mac & t_last_in;
  assign ev_clamped_tile = ev_tile & (cfg_mode == M_CLAMP) & (eclamp != esum_l);
  assign ev_outer_ovf    = ev_tile & (onext != osum);
  assign tile_mag        = esum[EXACT_BITS-1] ? -esum : esum;
  assign tile_p_out      = P_BITS'(tile_p);

  // ---------------------------------------------------------------- state
  always_ff @(posedge clk) begin
    a_out       <= a_in;
    b_out       <= b_in;
    step_out    <= step_in;
    k_first_out <= k_first_in;
    t_start_out <= t_start_in;
    t_last_out  <= t_last_in;
    if (mac) begin
      acc <= nnext[ACC_BITS-1:0];
      ex  <= esum;
    end
    if (mac & t_last_in) o <= onext[OUT_BITS-1:0];
    else if (mac & k_first_in) o <= '0;
    else if (drain) o <= o_in;
  end
  assign o_out = o;
endmodule
