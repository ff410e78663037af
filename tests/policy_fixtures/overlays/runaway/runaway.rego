# Test overlay: an evaluation that runs for seconds when the team is "runaway" (a stand-in for
# a badly written organisation rule). The worker process must be killed at the deadline.
package portcullis.overlay.runaway

import rego.v1

warn contains {"rule": "overlay.runaway", "message": sprintf("%d", [n])} if {
	input.principal.team == "runaway"
	n := count([x | some x in numbers.range(1, 30000000); x % 7 == 0])
}
