// Verilator harness of the streaming testbench: toggles the clock of hwq_stream_tb until the
// testbench calls $finish (or argv[1] rising edges have passed: exit code 3).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "Vhwq_stream_tb.h"
#include "verilated.h"

int main(int argc, char** argv) {
    uint64_t max_edges = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : UINT64_MAX;
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    const std::unique_ptr<Vhwq_stream_tb> top{new Vhwq_stream_tb{ctx.get()}};
    uint64_t edges = 0;
    top->clk = 0;
    top->eval();
    while (!ctx->gotFinish()) {
        top->clk = 1;
        top->eval();
        ++edges;
        if (ctx->gotFinish()) break;
        top->clk = 0;
        top->eval();
        if (edges >= max_edges) {
            std::fprintf(stderr, "hwq_stream_tb: no $finish after %llu edges\n", (unsigned long long)edges);
            return 3;
        }
    }
    top->final();
    return 0;
}
