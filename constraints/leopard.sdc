# LeOPArd generic timing constraints (ORFS platform-template style).
# Expects, set before sourcing:
#   clk_port_name  the clock port (Amaranth's sync domain: clk)
#   clk_period     the clock period in the platform's time unit (ps for asap7, ns otherwise)
#   clk_io_pct     fraction of the period budgeted outside the block on every I/O path
# rst (Amaranth's synchronous, active-high reset) is timed like any other input.
set clk_name core_clock
set clk_port [get_ports $clk_port_name]
create_clock -name $clk_name -period $clk_period $clk_port
set non_clock_inputs [lsearch -inline -all -not -exact [all_inputs] $clk_port]
set_input_delay [expr {$clk_period * $clk_io_pct}] -clock $clk_name $non_clock_inputs
set_output_delay [expr {$clk_period * $clk_io_pct}] -clock $clk_name [all_outputs]
