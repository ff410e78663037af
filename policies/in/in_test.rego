package portcullis_test.in

import rego.v1

import data.portcullis_test.lib as t

test_advisory_on_every_hosted_ai_tool if {
	t.decide("IN", "government", {}) == t.expect(t.all_ids, {
		t.reason("in-mof-doe-2025-01-29", "hosted", "warn", ["azure-eu", "deepseek-hosted", "openai"]),
	})
}

test_private_not_covered if {
	t.decide("IN", "private", {}) == t.expect(t.all_ids, set())
}
