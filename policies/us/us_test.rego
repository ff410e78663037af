package portcullis_test.us

import rego.v1

import data.portcullis_test.lib as t

federal_gov := {
	t.reason("us-disa-2025-01-28", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-house-cao-2025-01-30", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-nasa-2025-01-31", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-nasa-2025-01-31", "weights_cautious", "deny", ["deepseek-self"]),
	t.reason("us-doc-2025-03", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-doc-2025-03", "weights_cautious", "deny", ["deepseek-self"]),
	t.reason("us-ndaa26-s1532-2025-12-18", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-ndaa26-s1532-2025-12-18", "weights", "deny", ["deepseek-self"]),
	t.reason("us-ndaa26-s6604-2025-12-18", "hosted", "deny", ["deepseek-hosted"]),
	t.reason("us-ndaa26-s6604-2025-12-18", "weights_cautious", "deny", ["deepseek-self"]),
	t.reason("us-bill-no-deepseek-gov-devices-2025-02", "hosted", "info", ["deepseek-hosted"]),
	t.reason("us-bill-no-adversarial-ai-2025-06-25", "hosted", "info", ["deepseek-hosted"]),
	t.reason("us-bill-no-adversarial-ai-2025-06-25", "weights", "info", ["deepseek-self"]),
}

test_federal_government if {
	t.decide("US", "government", {}) == t.expect(["azure-eu", "openai"], federal_gov)
}

test_defence_adds_navy_guidance if {
	t.decide("US", "defence", {}) == t.expect(["azure-eu", "openai"], federal_gov | {
		t.reason("us-navy-2025-01-24", "hosted", "warn", ["deepseek-hosted"]),
		t.reason("us-navy-2025-01-24", "weights", "warn", ["deepseek-self"]),
	})
}

# NDAA s1532 covers the weights explicitly: the stance does not matter.
test_contractor_weights_denied_even_when_stance_permits if {
	t.decide("US-TX", "contractor", {"stance": "permit"}) == t.expect(["azure-eu", "openai"], {
		t.reason("us-tx-2025-01-31", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("us-ndaa26-s1532-2025-12-18", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("us-ndaa26-s1532-2025-12-18", "weights", "deny", ["deepseek-self"]),
		t.reason("us-ndaa26-s6604-2025-12-18", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("us-ndaa26-s6604-2025-12-18", "weights_permitted", "info", ["deepseek-self"]),
	})
}

test_contractor_before_the_ndaa if {
	t.decide("US", "defence_contractor", {"now": t.at("2025-12-17")}) == t.expect(t.all_ids, set())
}

test_louisiana_schools if {
	t.decide("US-LA", "education", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("us-la-2025", "hosted", "deny", ["deepseek-hosted"]),
	})
}

test_unverified_state_ban_warns if {
	t.decide("US-ND", "government", {"now": t.at("2025-01-27")}) == t.expect(t.all_ids, {
		t.reason("us-nd-2025-unverified", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_private_sector_not_covered if {
	t.decide("US-KS", "healthcare", {}) == t.expect(t.all_ids, set())
}
