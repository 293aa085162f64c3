// One PE configuration for area estimates (scripts/synth_area.sh): pe.sv with
// its configuration inputs tied to parameters and its widths set to exactly
// what the configuration needs, so yosys propagates the constants and keeps
// only the hardware of that mode, range and width.
//
// Sizing: product PROD = A + B bits (A + B + 1 when both operands are
// unsigned); the exact tile sum PROD + ceil(log2(TILE_MAX)) bits, enough for
// any tile of up to TILE_MAX steps; the narrow register W = ACC_BITS; the
// outer accumulator Wo = OUT_BITS.
//
// HEADROOM = 0 leaves the max |exact tile sum| statistic out: saturate and
// wrap then carry no exact tile sum register (it is statistics hardware, not
// datapath); exact and clamp_tile need it anyway. The overflow event outputs
// (one gate each) are always there.
//
// OUTER = 0 leaves the outer accumulator out (its register, adder, clamp and
// drain path become unobserved and are removed) and puts the tile result P on
// tile_p instead: the area of the multiplier and the tile accumulator alone.
module pe_synth #(
    parameter int A_BITS = 4,
    parameter int B_BITS = 4,
    parameter int A_SIGNED = 1,
    parameter int B_SIGNED = 1,
    parameter int ACC_BITS = 8,    // W
    parameter int MODE = 2,        // 0 exact, 1 clamp_tile, 2 saturate, 3 wrap
    parameter int FULL_RANGE = 1,  // 1 full, 0 symmetric
    parameter int OUT_BITS = 32,   // Wo
    parameter int TILE_MAX = 32,
    parameter int HEADROOM = 0,
    parameter int OUTER = 1,
    // derived, do not override
    parameter int PROD_BITS = A_BITS + B_BITS + ((A_SIGNED == 0 && B_SIGNED == 0) ? 1 : 0),
    parameter int EXACT_BITS = PROD_BITS + $clog2(TILE_MAX),
    parameter int P_BITS = (EXACT_BITS > ACC_BITS) ? EXACT_BITS : ACC_BITS
) (
    input  logic                  clk,
    input  logic                  en,
    input  logic [A_BITS-1:0]     a_in,
    input  logic [B_BITS-1:0]     b_in,
    input  logic                  step_in,
    input  logic                  k_first_in,
    input  logic                  t_start_in,
    input  logic                  t_last_in,
    output logic [A_BITS-1:0]     a_out,
    output logic [B_BITS-1:0]     b_out,
    output logic                  step_out,
    output logic                  k_first_out,
    output logic                  t_start_out,
    output logic                  t_last_out,
    input  logic                  drain,
    input  logic [OUT_BITS-1:0]   o_in,
    output logic [OUT_BITS-1:0]   o_out,
    output logic                  ev_mac,
    output logic                  ev_changed_step,
    output logic                  ev_tile,
    output logic                  ev_clamped_tile,
    output logic                  ev_outer_ovf,
    output logic [EXACT_BITS-1:0] tile_mag,
    output logic [P_BITS-1:0]     tile_p
);
  // Unread when HEADROOM = 0 / OUTER = 1 / OUTER = 0 respectively.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [EXACT_BITS-1:0] mag;
  logic [P_BITS-1:0]     p;
  logic [OUT_BITS-1:0]   o;
  logic                  ovf;
  /* verilator lint_on UNUSEDSIGNAL */
  assign tile_mag     = (HEADROOM != 0) ? mag : '0;
  assign tile_p       = (OUTER == 0) ? p : '0;
  assign o_out        = (OUTER != 0) ? o : '0;
  assign ev_outer_ovf = (OUTER != 0) ? ovf : 1'b0;

  pe #(
      .A_BITS(A_BITS), .B_BITS(B_BITS), .PROD_BITS(PROD_BITS), .ACC_BITS(ACC_BITS),
      .EXACT_BITS(EXACT_BITS), .OUT_BITS(OUT_BITS), .BUG(0)
  ) u_pe (
      .clk,
      .cfg_a_signed(A_SIGNED != 0), .cfg_b_signed(B_SIGNED != 0), .cfg_mode(2'(MODE)),
      .cfg_full_range(FULL_RANGE != 0), .cfg_acc_bits(6'(ACC_BITS)), .cfg_outer_bits(6'(OUT_BITS)),
      .en, .a_in, .b_in, .step_in, .k_first_in, .t_start_in, .t_last_in,
      .a_out, .b_out, .step_out, .k_first_out, .t_start_out, .t_last_out,
      .drain, .o_in, .o_out(o),
      .ev_mac, .ev_changed_step, .ev_tile, .ev_clamped_tile, .ev_outer_ovf(ovf), .tile_mag(mag), .tile_p_out(p)
  );
endmodule
