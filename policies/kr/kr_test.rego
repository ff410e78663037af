package portcullis_test.kr

import rego.v1

import data.portcullis_test.lib as t

not_ds := ["azure-eu", "deepseek-self", "openai"]

# The ministries blocked the hosted service; the weights were not addressed.
test_government_hosted_denied_weights_allowed if {
	t.decide("KR", "government", {}) == t.expect(not_ds, {
		t.reason("kr-ministries-2025-02-05", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("kr-ministries-2025-02-06", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("kr-moe-2025-02", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("kr-mois-2025-02-04", "hosted", "warn", ["deepseek-hosted"]),
		t.reason("kr-pipc-2025-04-24", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_app_store_suspension_denies_while_in_force if {
	t.decide("KR", "private", {"now": t.at("2025-04-27")}) == t.expect(not_ds, {
		t.reason("kr-pipc-2025-02-15", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("kr-pipc-2025-04-24", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_lifted_suspension_stops_denying if {
	t.decide("KR", "private", {"now": t.at("2025-04-28")}) == t.expect(t.all_ids, {
		t.reason("kr-pipc-2025-04-24", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_nuclear_operator_covered_from_its_notice if {
	t.decide("KR", "critical_infrastructure", {"now": t.at("2025-02-01")}) == t.expect(not_ds, {
		t.reason("kr-khnp-2025-02-01", "hosted", "deny", ["deepseek-hosted"]),
	})
}
