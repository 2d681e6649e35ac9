# OpenSTA: ideal clock, inputs at time 0, outputs required at the period, the library's default wire
# load; delay = period - slack of the worst path (reported with its slack).
read_liberty {liberty}
read_verilog netlist.v
link_design {top}
{clock}
{input_delay}
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 4
