// Icarus top level of the streaming testbench: a 10 ns clock around hwq_stream_tb.
`timescale 1ns/1ps
module hwq_stream_top;
  reg clk = 1'b0;
  always #5 clk = ~clk;
  hwq_stream_tb tb (.clk(clk));
endmodule
