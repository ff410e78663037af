package portcullis_test.tw

import rego.v1

import data.portcullis_test.lib as t

test_government_hosted_and_ambiguous_weights_denied if {
	t.decide("TW", "government", {}) == t.expect(["azure-eu", "openai"], {
		t.reason("tw-moda-2025-01-31", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("tw-moda-2025-01-31", "weights_cautious", "deny", ["deepseek-self"]),
		t.reason("tw-ey-2025-02-03", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("tw-ey-2025-02-03", "weights_cautious", "deny", ["deepseek-self"]),
		t.reason("tw-nsb-2025-11-16", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_public_warning_is_not_a_ban if {
	t.decide("TW", "private", {"now": t.at("2025-11-16")}) == t.expect(t.all_ids, {
		t.reason("tw-nsb-2025-11-16", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_foundation_covered_by_moda_only if {
	t.decide("TW", "government_foundation", {"now": t.at("2025-02-10"), "stance": "permit"}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("tw-moda-2025-01-31", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("tw-moda-2025-01-31", "weights_permitted", "info", ["deepseek-self"]),
	})
}
